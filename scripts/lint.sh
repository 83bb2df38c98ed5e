#!/usr/bin/env bash
# Checks formatting (clang-format --dry-run -Werror) and runs clang-tidy (.clang-tidy) over the test,
# example and fuzz sources, which pulls in every header they use. Not part of CI: clang-tidy takes minutes.
# Both run; the exit status is non-zero when either found something.
# Usage: scripts/lint.sh [--format-only | --tidy-only] [file.cpp ...]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

run_format=1
run_tidy=1
case ${1:-} in
    --format-only) run_tidy=0; shift ;;
    --tidy-only) run_format=0; shift ;;
esac
status=0
clang_format=$(command -v clang-format-14 || command -v clang-format)
clang_tidy=$(command -v clang-tidy-14 || command -v clang-tidy)

if [[ $run_format -eq 1 ]]; then
    echo "== clang-format (scripts/format.sh fixes what it reports)"
    git ls-files -z --cached --others --exclude-standard -- \
        'include/*.hpp' 'include/*.ipp' 'tests/*.hpp' 'tests/*.cpp' 'examples/*.cpp' 'benchmarks/*.cpp' 'fuzz/*.cpp' 'tools/*.cpp' |
        xargs -0 -r "$clang_format" --dry-run -Werror || status=1
fi
[[ $run_tidy -eq 1 ]] || exit $status

echo "== clang-tidy"
build=build/clang-debug
cmake --preset clang-debug > /dev/null
# clang-tidy reads the build's compile commands without the precompiled header (which it could only load if
# it had been built with identical options); the PCH's source is still force-included.
tidy_db=$build/tidy
mkdir -p "$tidy_db"
python3 - "$build/compile_commands.json" "$tidy_db/compile_commands.json" <<'PY'
import json, sys
commands = json.load(open(sys.argv[1]))
for c in commands:
    args = c["command"].split(" ")
    out, i = [], 0
    while i < len(args):
        if args[i] == "-Xclang" and i + 3 < len(args) and args[i + 1] == "-include-pch":
            i += 4
            continue
        out.append(args[i])
        i += 1
    c["command"] = " ".join(out)
json.dump(commands, open(sys.argv[2], "w"), indent=1)
PY
if [[ $# -gt 0 ]]; then
    files=("$@")
else
    mapfile -t files < <(git ls-files --cached --others --exclude-standard -- \
        'tests/*.cpp' 'examples/*.cpp' 'benchmarks/*.cpp' | grep -v -e '^tests/consumers/' -e '^tests/compile_fail/')
fi
printf '%s\n' "${files[@]}" | xargs -P 2 -I{} "$clang_tidy" --quiet --warnings-as-errors="*" -p "$tidy_db" {} || status=1
exit $status
