#!/usr/bin/env bash
# Applies .clang-format to our C++ sources (not the generated single header). Run before committing;
# scripts/lint.sh checks the same files without changing them.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
clang_format=$(command -v clang-format-14 || command -v clang-format)
git ls-files -z --cached --others --exclude-standard -- \
    'include/*.hpp' 'include/*.ipp' 'tests/*.hpp' 'tests/*.cpp' 'examples/*.cpp' 'benchmarks/*.cpp' 'fuzz/*.cpp' 'tools/*.cpp' |
    xargs -0 -r "$clang_format" -i
