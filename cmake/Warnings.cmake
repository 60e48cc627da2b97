function(ugate_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                         -Wno-unused-parameter -Wno-missing-field-initializers)
  if(UGATE_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
