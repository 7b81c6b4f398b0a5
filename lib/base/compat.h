/*
 * compat.h - included last by every .c file: poisons functions we never use.
 *
 * strcpy/strcat/sprintf/vsprintf/gets cannot be bounded; atoi/atol cannot tell
 * junk from zero; strtok keeps hidden state.  Use memcpy, dz_buf, snprintf,
 * the ranged parsers in parse.h, and strtok_r.
 */
#ifndef DZ_COMPAT_H
#define DZ_COMPAT_H

#pragma GCC poison strcpy strcat sprintf vsprintf gets atoi atol strtok

#endif
