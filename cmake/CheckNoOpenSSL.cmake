# Fails if BINARY needs the system OpenSSL (libssl.so.3 / libcrypto.so.3). BoringSSL from the Android
# package has soname libssl.so.0 / libcrypto.so.0 and is allowed.
execute_process(COMMAND readelf -d ${BINARY} OUTPUT_VARIABLE dyn RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "readelf failed on ${BINARY}")
endif()
if(dyn MATCHES "lib(ssl|crypto)\\.so\\.(1|3)")
  file(REMOVE ${BINARY})
  message(FATAL_ERROR "${BINARY} links the system OpenSSL; only BoringSSL may be linked into ugated")
endif()
