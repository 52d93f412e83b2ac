# Install rules and the Debian package (CPack DEB): `cpack --config build/default/CPackConfig.cmake`
# packages what is already built (build first: scripts/build.sh default), never rebuilding it.
#   /usr/bin/herald, /usr/bin/heraldctl
#   /usr/share/herald/static/   herald.js, herald.d.ts, the demo pages and /admin
#   /usr/lib/systemd/system/herald.service (runs as the `herald` user, created by postinst)
#   /etc/herald/herald.toml     every key commented, with its default (a conffile)
include(GNUInstallDirs)

# `ninja install` and cpack install what is built; they do not build everything first.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

install(TARGETS herald heraldctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# herald finds these beside its executable: <bin>/../share/herald/static (server/static_dir.h).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/client/js/
        DESTINATION ${CMAKE_INSTALL_DATADIR}/herald/static
        PATTERN "package.json" EXCLUDE)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/herald.service DESTINATION lib/systemd/system)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/herald.toml DESTINATION /etc/herald)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME herald)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "Herald maintainers <herald@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Real-time broker: WebSocket for browsers, gRPC and HTTP/JSON control API for backends")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # Depends from the shared libraries the binaries use
set(CPACK_DEBIAN_PACKAGE_DEPENDS "passwd")  # useradd in postinst
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/debian/conffiles ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
    ${PROJECT_SOURCE_DIR}/packaging/debian/prerm ${PROJECT_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
