# Writes the contents of IN as a C++ raw string literal to OUT.
file(READ ${IN} content)
string(FIND "${content}" ")ugate_embed\"" bad)
if(NOT bad EQUAL -1)
  message(FATAL_ERROR "${IN} contains the raw-string delimiter")
endif()
file(WRITE ${OUT} "R\"ugate_embed(${content})ugate_embed\"\n")
