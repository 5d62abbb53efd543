/*
 * Second oracle: the G.711 functions of spandsp (Debian's libspandsp-dev, header-only inline
 * functions), in the same output layout as g191_g711.c.
 */
#include <stdio.h>
#include <stdint.h>
#include <spandsp/telephony.h>
#include <spandsp/bit_operations.h>
#include <spandsp/g711.h>

int main(void) {
  int v, c;
  for (v = -32768; v <= 32767; v++) putchar(linear_to_alaw(v));
  for (v = -32768; v <= 32767; v++) putchar(linear_to_ulaw(v));
  for (c = 0; c < 256; c++) { int16_t x = alaw_to_linear((uint8_t)c); putchar(x & 0xFF); putchar((x >> 8) & 0xFF); }
  for (c = 0; c < 256; c++) { int16_t x = ulaw_to_linear((uint8_t)c); putchar(x & 0xFF); putchar((x >> 8) & 0xFF); }
  return 0;
}
