// callsavvy/version.hpp — the library's version, as macros and as the inline namespace every public name
// lives in, so two different copies of callsavvy linked into one program fail to link instead of mixing.
#pragma once

#define CALLSAVVY_VERSION_MAJOR 0
#define CALLSAVVY_VERSION_MINOR 1
#define CALLSAVVY_VERSION_PATCH 0
// MAJOR * 10000 + MINOR * 100 + PATCH, for preprocessor comparisons.
#define CALLSAVVY_VERSION (CALLSAVVY_VERSION_MAJOR * 10000 + CALLSAVVY_VERSION_MINOR * 100 + CALLSAVVY_VERSION_PATCH)
#define CALLSAVVY_VERSION_STRING "0.1.0"

// Every declaration sits in callsavvy::CALLSAVVY_ABI_NAMESPACE; users still write callsavvy::client.
#define CALLSAVVY_ABI_NAMESPACE v0_1
#define CALLSAVVY_BEGIN_NAMESPACE                                                                                      \
    namespace callsavvy {                                                                                              \
    inline namespace CALLSAVVY_ABI_NAMESPACE {
#define CALLSAVVY_END_NAMESPACE                                                                                        \
    }                                                                                                                  \
    }

CALLSAVVY_BEGIN_NAMESPACE
inline constexpr int version_major = CALLSAVVY_VERSION_MAJOR;
inline constexpr int version_minor = CALLSAVVY_VERSION_MINOR;
inline constexpr int version_patch = CALLSAVVY_VERSION_PATCH;
inline constexpr const char* version_string = CALLSAVVY_VERSION_STRING;
CALLSAVVY_END_NAMESPACE
