# vigil_embed(target out.c name1 file1 [name2 file2 ...])
# Generates out.c defining, for each pair, `const unsigned char NAME[]` and
# `const size_t NAME_len` with the file's bytes (NUL-terminated), and a
# table of them all, `const vg_embedded_t TARGET[]` with `TARGET_count`
# entries {path as given, bytes, length} (see daemon/cli/embedded.h).
function(vigil_embed target out)
  set(args ${ARGN})
  set(deps)
  set(pairs)
  list(LENGTH args n)
  math(EXPR last "${n} - 1")
  foreach(i RANGE 0 ${last} 2)
    math(EXPR j "${i} + 1")
    list(GET args ${i} name)
    list(GET args ${j} file)
    list(APPEND deps ${PROJECT_SOURCE_DIR}/${file})
    list(APPEND pairs ${name} ${PROJECT_SOURCE_DIR}/${file} ${file})
  endforeach()
  string(REPLACE ";" "|" pairs "${pairs}")
  add_custom_command(
    OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/${out}
    COMMAND ${CMAKE_COMMAND} -DOUT=${CMAKE_CURRENT_BINARY_DIR}/${out} "-DPAIRS=${pairs}"
            -DTABLE=${target}
            -P ${PROJECT_SOURCE_DIR}/cmake/embed_run.cmake
    DEPENDS ${deps} ${PROJECT_SOURCE_DIR}/cmake/embed_run.cmake
    COMMENT "Embedding demo assets" VERBATIM)
endfunction()
