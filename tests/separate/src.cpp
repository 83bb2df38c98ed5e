// The library's compiled part of the separate-compilation test program: the one file including src.hpp.
#include <callsavvy/src.hpp>
