# Flags for callsavvy's own programs (tests, examples, benchmarks, fuzzers) — never for callsavvy::callsavvy,
# whose users pick their own. Link callsavvy_build_flags to get them.
add_library(callsavvy_build_flags INTERFACE)
# Our headers must stay warning-free with both compilers; a new warning fails the build.
target_compile_options(callsavvy_build_flags INTERFACE -Wall -Wextra -Wpedantic -Werror)

if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  # g++ 12 at -O2/-O3 reports `"literal" + std::string` as a memcpy of up to 2^63 bytes (-Wstringop-overflow)
  # or a pointer overflow (-Warray-bounds), on a branch of basic_string::_M_replace for a source inside the
  # string's own buffer, which a literal never is (GCC bug 105651, fixed in 13). Tests build strings that way
  # everywhere, and -Werror would fail the optimized build wherever the inliner reaches one. Debug builds
  # (the sanitizer presets included) keep both warnings, and clang keeps them everywhere.
  target_compile_options(callsavvy_build_flags INTERFACE
                         $<$<NOT:$<CONFIG:Debug>>:-Wno-stringop-overflow> $<$<NOT:$<CONFIG:Debug>>:-Wno-array-bounds>)
endif()

if(CALLSAVVY_SANITIZE STREQUAL "")
  # nothing to add
elseif(CALLSAVVY_SANITIZE STREQUAL "address,undefined")
  # -O1: sanitized builds of Asio code are slow to compile and to run at -O0; -O1 keeps stack traces usable.
  # A UB report fails the test instead of scrolling by.
  set(_callsavvy_san -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    # Without it clang 14 cannot compile coroutines under -fsanitize=undefined ("Cannot represent a
    # difference across sections"): the function sanitizer's prologue data breaks coroutine frames.
    list(APPEND _callsavvy_san -fno-sanitize=function)
  endif()
  target_compile_options(callsavvy_build_flags INTERFACE ${_callsavvy_san} -O1)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # g++'s manual warns that sanitizers make -Wmaybe-uninitialized report false positives; g++ 12 does so
    # in libstdc++'s std::function inside Catch2's main, which -Werror would turn into a failed build.
    target_compile_options(callsavvy_build_flags INTERFACE -Wno-maybe-uninitialized)
  endif()
  target_link_options(callsavvy_build_flags INTERFACE ${_callsavvy_san})
elseif(CALLSAVVY_SANITIZE STREQUAL "thread")
  set(_callsavvy_san -fsanitize=thread -fno-omit-frame-pointer)
  target_compile_options(callsavvy_build_flags INTERFACE ${_callsavvy_san} -O1)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # g++ 12 warns (-Wtsan) that TSan does not model std::atomic_thread_fence, which Asio uses; under
    # -Werror that warning would stop the build although it says nothing about our code.
    target_compile_options(callsavvy_build_flags INTERFACE -Wno-tsan)
    # g++ 12 at -O1 with -fsanitize=thread reports Asio's awaitable_frame_base::operator delete as
    # mismatched with the coroutine frame's allocation, which is Asio's own matching operator new: a false
    # positive (the same coroutines build clean without TSan and under clang), turned into a failed build by
    # -Werror depending on what gets inlined.
    target_compile_options(callsavvy_build_flags INTERFACE -Wno-mismatched-new-delete)
  endif()
  target_link_options(callsavvy_build_flags INTERFACE ${_callsavvy_san})
else()
  message(FATAL_ERROR "CALLSAVVY_SANITIZE must be empty, 'address,undefined' or 'thread', not '${CALLSAVVY_SANITIZE}'")
endif()
