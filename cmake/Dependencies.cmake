find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
find_package(spdlog REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
pkg_check_modules(CARES REQUIRED IMPORTED_TARGET libcares)
pkg_check_modules(NGHTTP2 REQUIRED IMPORTED_TARGET libnghttp2)
pkg_check_modules(NGTCP2 REQUIRED IMPORTED_TARGET libngtcp2>=1.0)
pkg_check_modules(NGHTTP3 REQUIRED IMPORTED_TARGET libnghttp3>=1.0)
pkg_check_modules(LIBNL REQUIRED IMPORTED_TARGET libnl-3.0 libnl-route-3.0)
pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)  # the Web Push store
find_package(BoringSSL REQUIRED)
# xDS: Debian's libprotobuf-lite and protoc 3.21 (FindProtobuf; protobuf::libprotobuf-lite, protobuf::protoc).
find_package(Protobuf 3.21 REQUIRED)

# ugate_no_system_openssl fails the build if the system OpenSSL ended up linked into target.
function(ugate_no_system_openssl target)
  add_custom_command(TARGET ${target} POST_BUILD
    COMMAND ${CMAKE_COMMAND} -DBINARY=$<TARGET_FILE:${target}>
            -P ${PROJECT_SOURCE_DIR}/cmake/CheckNoOpenSSL.cmake
    VERBATIM)
endfunction()
