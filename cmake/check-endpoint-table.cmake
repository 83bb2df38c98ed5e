# cmake/check-endpoint-table.cmake — keeps README.md's endpoint table equal to what the catalog says. The
# table between the markers below is the output of `callsavvy resources --markdown`; this script compares
# the two (the CTest test readme_endpoint_table_is_current) or, with -DFIX=ON, rewrites the README's section
# (scripts/endpoint_table.sh). One script for both, so the check and the fix cannot disagree.
#   cmake -DCLI=<path to callsavvy> -DREADME=<path to README.md> [-DFIX=ON] -P cmake/check-endpoint-table.cmake
cmake_minimum_required(VERSION 3.25)

set(begin_marker "<!-- endpoints:begin -->")
set(end_marker "<!-- endpoints:end -->")

if(NOT CLI OR NOT README)
  message(FATAL_ERROR "usage: cmake -DCLI=<callsavvy> -DREADME=<README.md> [-DFIX=ON] -P check-endpoint-table.cmake")
endif()

execute_process(COMMAND "${CLI}" resources --markdown
  OUTPUT_VARIABLE table ERROR_VARIABLE cli_error RESULT_VARIABLE cli_result)
if(NOT cli_result EQUAL 0)
  message(FATAL_ERROR "'${CLI} resources --markdown' failed (${cli_result}): ${cli_error}")
endif()

file(READ "${README}" readme)
string(FIND "${readme}" "${begin_marker}" begin_at)
string(FIND "${readme}" "${end_marker}" end_at)
if(begin_at EQUAL -1 OR end_at EQUAL -1 OR end_at LESS begin_at)
  message(FATAL_ERROR "${README} lacks the markers '${begin_marker}' ... '${end_marker}' around the endpoint table")
endif()
string(LENGTH "${begin_marker}\n" begin_length)
math(EXPR table_at "${begin_at} + ${begin_length}")
math(EXPR current_length "${end_at} - ${table_at}")
if(current_length LESS 0)
  set(current_length 0)
  set(table_at ${end_at})
endif()
string(SUBSTRING "${readme}" ${table_at} ${current_length} current)

if(current STREQUAL table)
  message(STATUS "${README}: the endpoint table is current")
  return()
endif()

if(FIX)
  string(SUBSTRING "${readme}" 0 ${begin_at} head)
  string(SUBSTRING "${readme}" ${end_at} -1 tail)
  file(WRITE "${README}" "${head}${begin_marker}\n${table}${tail}")
  message(STATUS "${README}: endpoint table rewritten from '${CLI} resources --markdown'")
  return()
endif()

message(FATAL_ERROR "${README}'s endpoint table differs from the catalog's ('callsavvy resources --markdown').\n"
  "Regenerate it with:\n  scripts/endpoint_table.sh ${CLI}\n"
  "Expected:\n${table}\nFound:\n${current}")
