# The layering of daemon/, checked at build time.
#
# Each folder under daemon/ is a static library that links only the layers
# below it:   base <- engine <- state <- ops <- kafka <- cli
# The linker would not notice an engine file that includes a Kafka-layer
# header (the final program links everything), so every library depends on
# a check that reads its sources' #include lines and fails the build when
# one names a header of a layer it may not use, a private header of
# another folder ("../x/y.h"), or a third-party library the layer must not
# touch (librdkafka outside kafka/ and cli/).

# Which layer owns each public header in include/vigil/.
set(VIGIL_LAYER_HEADERS_base diag.h yaml.h utf8.h norm.h)
set(VIGIL_LAYER_HEADERS_engine event.h ruleset.h rule_state.h scanner.h alert.h workpool.h)
set(VIGIL_LAYER_HEADERS_state state.h partstates.h checkpoint_record.h)
set(VIGIL_LAYER_HEADERS_ops config.h log.h metrics.h metrics_http.h watch.h state_metrics.h)
set(VIGIL_LAYER_HEADERS_kafka pipeline.h)
set(VIGIL_LAYER_HEADERS_cli)

# Third-party headers a layer may include (by the directory or file name
# in #include <...>); anything not listed here is allowed everywhere.
set(VIGIL_LAYER_GUARDED librdkafka microhttpd.h systemd)
set(VIGIL_LAYER_THIRD_base)
set(VIGIL_LAYER_THIRD_engine)
set(VIGIL_LAYER_THIRD_state)
set(VIGIL_LAYER_THIRD_ops microhttpd.h)
set(VIGIL_LAYER_THIRD_kafka librdkafka systemd)
set(VIGIL_LAYER_THIRD_cli librdkafka systemd)

# vigil_layer(TARGET LAYER ALLOWED_LAYERS...): adds the include check of
# TARGET's sources (and of the headers beside them) to its build.
function(vigil_layer target layer)
  set(allowed ${layer} ${ARGN})
  set(map)
  foreach(l base engine state ops kafka cli)
    foreach(h ${VIGIL_LAYER_HEADERS_${l}})
      list(APPEND map "${h}=${l}")
    endforeach()
  endforeach()
  get_target_property(srcs ${target} SOURCES)
  set(files)
  foreach(s ${srcs})
    if(NOT IS_ABSOLUTE ${s})
      set(s ${CMAKE_CURRENT_SOURCE_DIR}/${s})
    endif()
    if(s MATCHES "\\.[ch]$" AND NOT s MATCHES "^${CMAKE_BINARY_DIR}")
      list(APPEND files ${s})
    endif()
  endforeach()
  file(GLOB hdrs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.h)
  list(APPEND files ${hdrs})
  set(stamp ${CMAKE_CURRENT_BINARY_DIR}/${target}.layercheck)
  string(REPLACE ";" "|" files_arg "${files}")
  string(REPLACE ";" "|" map_arg "${map}")
  string(REPLACE ";" "|" allowed_arg "${allowed}")
  string(REPLACE ";" "|" third_arg "${VIGIL_LAYER_THIRD_${layer}}")
  string(REPLACE ";" "|" guarded_arg "${VIGIL_LAYER_GUARDED}")
  add_custom_command(OUTPUT ${stamp}
    COMMAND ${CMAKE_COMMAND} -DLAYER=${layer} "-DALLOWED=${allowed_arg}" "-DMAP=${map_arg}"
            "-DFILES=${files_arg}" "-DTHIRD=${third_arg}" "-DGUARDED=${guarded_arg}"
            -DSTAMP=${stamp} -P ${PROJECT_SOURCE_DIR}/cmake/check_layer.cmake
    DEPENDS ${files} ${PROJECT_SOURCE_DIR}/cmake/check_layer.cmake
            ${PROJECT_SOURCE_DIR}/cmake/layers.cmake
    COMMENT "Checking the includes of daemon/${layer}" VERBATIM)
  add_custom_target(${target}_layercheck DEPENDS ${stamp})
  add_dependencies(${target} ${target}_layercheck)
endfunction()
