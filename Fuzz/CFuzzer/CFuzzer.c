// Nothing to compile: the target only exists for its header.
#include "CFuzzer.h"
