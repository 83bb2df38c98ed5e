# The dependencies of callsavvy::callsavvy, shared by the build tree and the installed package config, so
# both find the same things the same way.
include(CMakeFindDependencyMacro)
include(GNUInstallDirs)

# Inside callsavvyConfig.cmake find_dependency() reports a missing dependency as "callsavvy not found"
# with the reason; in our own build a missing dependency must stop the configure step instead.
macro(_callsavvy_find_dependency)
  if(CMAKE_FIND_PACKAGE_NAME)
    find_dependency(${ARGV})
  else()
    find_package(${ARGV} REQUIRED)
  endif()
endmacro()

set(THREADS_PREFER_PTHREAD_FLAG ON)
_callsavvy_find_dependency(Threads)
_callsavvy_find_dependency(OpenSSL 3)
if(CALLSAVVY_USE_BOOST_ASIO)
  # Boost.Asio is header-only, and so is Boost.System from 1.69 on: both come with Boost::headers.
  _callsavvy_find_dependency(Boost 1.81 CONFIG COMPONENTS json system)
  if(NOT TARGET callsavvy::asio)
    add_library(callsavvy::asio INTERFACE IMPORTED)
    set_target_properties(callsavvy::asio PROPERTIES INTERFACE_LINK_LIBRARIES "Boost::system;Boost::headers")
  endif()
else()
  _callsavvy_find_dependency(Boost 1.81 CONFIG COMPONENTS json)
endif()

# Standalone Asio ships no CMake package; it is a header directory, wrapped here in an imported target.
if(NOT TARGET callsavvy::asio)
  find_path(CALLSAVVY_ASIO_INCLUDE_DIR asio.hpp DOC "Directory holding standalone Asio's asio.hpp")
  if(NOT CALLSAVVY_ASIO_INCLUDE_DIR)
    set(_callsavvy_asio_missing "callsavvy needs standalone Asio 1.22 or newer (Debian: libasio-dev); set CALLSAVVY_ASIO_INCLUDE_DIR to the directory holding asio.hpp")
    if(CMAKE_FIND_PACKAGE_NAME)
      set(${CMAKE_FIND_PACKAGE_NAME}_NOT_FOUND_MESSAGE "${_callsavvy_asio_missing}")
      set(${CMAKE_FIND_PACKAGE_NAME}_FOUND FALSE)
      return()
    endif()
    message(FATAL_ERROR "${_callsavvy_asio_missing}")
  endif()
  add_library(callsavvy::asio INTERFACE IMPORTED)
  set_target_properties(callsavvy::asio PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${CALLSAVVY_ASIO_INCLUDE_DIR}")
endif()
