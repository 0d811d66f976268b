# Manual pages and the Debian package. Included from the top CMakeLists.txt
# after the install() rules of the program, its unit, config and rules.

# ---- manual pages --------------------------------------------------------
# The pages carry @VERSION@; they are installed gzipped (as Debian wants)
# when gzip is there, as they are otherwise.
find_program(VIGIL_GZIP gzip)
set(VIGIL_MAN_PAGES vigil.8 vigil-rules.5)
set(VIGIL_MAN_OUTPUTS)
foreach(page ${VIGIL_MAN_PAGES})
  configure_file(systemd/man/${page} ${CMAKE_CURRENT_BINARY_DIR}/man/${page} @ONLY)
  string(REGEX REPLACE ".*\\.([0-9])$" "\\1" section ${page})
  if(VIGIL_GZIP)
    add_custom_command(OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/man/${page}.gz
      COMMAND ${VIGIL_GZIP} -9nc ${CMAKE_CURRENT_BINARY_DIR}/man/${page}
              > ${CMAKE_CURRENT_BINARY_DIR}/man/${page}.gz
      DEPENDS ${CMAKE_CURRENT_BINARY_DIR}/man/${page}
      COMMENT "Compressing man page ${page}")
    list(APPEND VIGIL_MAN_OUTPUTS ${CMAKE_CURRENT_BINARY_DIR}/man/${page}.gz)
    install(FILES ${CMAKE_CURRENT_BINARY_DIR}/man/${page}.gz
      DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
  else()
    install(FILES ${CMAKE_CURRENT_BINARY_DIR}/man/${page}
      DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
  endif()
endforeach()
add_custom_target(manpages ALL DEPENDS ${VIGIL_MAN_OUTPUTS})

# ---- Debian package: cpack -G DEB ----------------------------------------
# The unit names /usr/bin/vigil and /etc/vigil/vigil.yaml, so a package is
# built from a tree configured with -DCMAKE_INSTALL_PREFIX=/usr (which
# also puts the configuration in /etc): tests/install/deb_test.sh does so.
if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  message(STATUS "cpack -G DEB needs -DCMAKE_INSTALL_PREFIX=/usr "
                 "(now ${CMAKE_INSTALL_PREFIX}); the unit expects /usr/bin/vigil")
endif()

# Every file under /etc is a conffile: dpkg keeps an administrator's edits
# of the configuration and of the rule packs across upgrades, and keeps
# them on remove (purge deletes them).
file(GLOB_RECURSE VIGIL_RULE_FILES CONFIGURE_DEPENDS RELATIVE ${PROJECT_SOURCE_DIR}/rules
  ${PROJECT_SOURCE_DIR}/rules/*.yaml ${PROJECT_SOURCE_DIR}/rules/*.txt)
set(VIGIL_CONFFILES "${CMAKE_INSTALL_FULL_SYSCONFDIR}/vigil/vigil.yaml\n")
foreach(f ${VIGIL_RULE_FILES})
  if(NOT f MATCHES "^demo/")
    string(APPEND VIGIL_CONFFILES "${CMAKE_INSTALL_FULL_SYSCONFDIR}/vigil/rules.d/${f}\n")
  endif()
endforeach()
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/debian/conffiles "${VIGIL_CONFFILES}")
foreach(script postinst prerm postrm)
  configure_file(systemd/debian/${script} ${CMAKE_CURRENT_BINARY_DIR}/debian/${script} COPYONLY)
endforeach()

set(CPACK_PACKAGE_NAME vigil)
set(CPACK_PACKAGE_VENDOR "vigil")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "vigil maintainers <vigil-maintainers@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "rule-based alerting over Kafka streams of news and trade events")
# CPack puts the summary first and indents these lines itself.
set(CPACK_PACKAGE_DESCRIPTION
  "vigil consumes JSON news and trade events from Kafka, evaluates
analyst-written YAML rules (keyword search compiled with vectorscan,
field conditions) and produces JSON alerts. It ships a hardened systemd
unit, rule packs in /etc/vigil/rules.d and the vigil check/test/scan
commands for writing rules.")
# Debian ships stripped binaries.
set(CPACK_STRIP_FILES TRUE)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://example.org/vigil")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
# Library dependencies come from dpkg-shlibdeps (package dpkg-dev), so they
# match the distribution the package is built on.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS OFF)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${CMAKE_CURRENT_BINARY_DIR}/debian/conffiles
  ${CMAKE_CURRENT_BINARY_DIR}/debian/postinst
  ${CMAKE_CURRENT_BINARY_DIR}/debian/prerm
  ${CMAKE_CURRENT_BINARY_DIR}/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_GENERATOR DEB)
include(CPack)
