# Run by `cmake --install` (install(SCRIPT) in CMakeLists.txt): installs UGATE_DEFAULT_CONFIG as
# <UGATE_CONFIG_DIR>/ugated.json only when that file does not exist yet, so an edited configuration
# survives every later install. UGATE_CONFIG_DIR may be relative to the install prefix.
set(_dir "${UGATE_CONFIG_DIR}")
if(NOT IS_ABSOLUTE "${_dir}")
  set(_dir "${CMAKE_INSTALL_PREFIX}/${_dir}")
endif()
set(_cfg "$ENV{DESTDIR}${_dir}/ugated.json")
if(EXISTS "${_cfg}" OR IS_SYMLINK "${_cfg}")
  message(STATUS "Kept: ${_cfg} (exists; the shipped default is ugated.json.default beside it)")
else()
  # file(INSTALL) prepends DESTDIR itself, logs "Installing: ..." and records the manifest.
  file(INSTALL DESTINATION "${_dir}" TYPE FILE RENAME ugated.json FILES "${UGATE_DEFAULT_CONFIG}")
endif()
