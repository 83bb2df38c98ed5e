// The one file of the program that compiles callsavvy's core (single header, separate compilation).
#define CALLSAVVY_SOURCE 1
#include <callsavvy/callsavvy.hpp>
