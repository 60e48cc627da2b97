# Finds BoringSSL as packaged by Debian for the Android SDK (android-libboringssl-dev):
# headers in /usr/include/android/openssl, libraries in /usr/lib/<triplet>/android.
# Defines BoringSSL::crypto and BoringSSL::ssl with an rpath so the system OpenSSL is never picked up.
include(FindPackageHandleStandardArgs)
set(_bssl_libdirs /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/android /usr/lib/x86_64-linux-gnu/android
    /usr/lib/aarch64-linux-gnu/android)
find_path(BoringSSL_INCLUDE_DIR openssl/base.h PATHS /usr/include/android NO_DEFAULT_PATH)
find_library(BoringSSL_CRYPTO_LIBRARY NAMES crypto PATHS ${_bssl_libdirs} NO_DEFAULT_PATH)
find_library(BoringSSL_SSL_LIBRARY NAMES ssl PATHS ${_bssl_libdirs} NO_DEFAULT_PATH)
find_package_handle_standard_args(BoringSSL REQUIRED_VARS BoringSSL_INCLUDE_DIR
                                  BoringSSL_CRYPTO_LIBRARY BoringSSL_SSL_LIBRARY)
if(BoringSSL_FOUND AND NOT TARGET BoringSSL::crypto)
  get_filename_component(BoringSSL_LIBDIR ${BoringSSL_CRYPTO_LIBRARY} DIRECTORY)
  add_library(BoringSSL::crypto SHARED IMPORTED)
  set_target_properties(BoringSSL::crypto PROPERTIES IMPORTED_LOCATION ${BoringSSL_CRYPTO_LIBRARY}
    IMPORTED_NO_SONAME FALSE INTERFACE_INCLUDE_DIRECTORIES ${BoringSSL_INCLUDE_DIR}
    INTERFACE_LINK_OPTIONS "-Wl,-rpath,${BoringSSL_LIBDIR}")
  add_library(BoringSSL::ssl SHARED IMPORTED)
  set_target_properties(BoringSSL::ssl PROPERTIES IMPORTED_LOCATION ${BoringSSL_SSL_LIBRARY}
    INTERFACE_INCLUDE_DIRECTORIES ${BoringSSL_INCLUDE_DIR}
    INTERFACE_LINK_LIBRARIES BoringSSL::crypto)
endif()
