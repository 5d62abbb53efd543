/*
 * Reference G.711 for the conformance test: a transcription of the ITU-T G.191 Software Tool
 * Library's g711.c (alaw_compress, alaw_expand, ulaw_compress, ulaw_expand), kept in its original
 * shape (short arithmetic, loops) so that it stays an independent oracle for the Rust code.
 *
 * Output on stdout, binary: A-law codes of all 65,536 inputs (-32768..32767, one byte each), then
 * the µ-law codes of the same, then A-law and µ-law decodings of all 256 codes (little-endian
 * int16 each).
 */
#include <stdio.h>

static void alaw_compress(long lseg, short *linbuf, short *logbuf) {
  short ix, iexp;
  long n;
  for (n = 0; n < lseg; n++) {
    ix = linbuf[n] < 0 ? (~linbuf[n]) >> 4 : linbuf[n] >> 4; /* 0 <= ix < 2048 */
    if (ix > 15) { /* exponent=0 for ix <= 15 */
      iexp = 1;
      while (ix > 16 + 15) { /* find mantissa and exponent */
        ix >>= 1;
        iexp++;
      }
      ix -= 16;          /* remove leading '1' */
      ix += iexp << 4;   /* now compute encoded value */
    }
    if (linbuf[n] >= 0)
      ix |= (0x0080);    /* add sign bit */
    logbuf[n] = ix ^ (0x0055); /* toggle even bits */
  }
}

static void alaw_expand(long lseg, short *logbuf, short *linbuf) {
  short ix, mant, iexp;
  long n;
  for (n = 0; n < lseg; n++) {
    ix = logbuf[n] ^ (0x0055); /* re-toggle toggled bits */
    ix &= (0x007F);            /* remove sign bit */
    iexp = ix >> 4;            /* extract exponent */
    mant = ix & (0x000F);      /* now get mantissa */
    if (iexp > 0)
      mant = mant + 16;        /* add leading '1', if exponent > 0 */
    mant = (mant << 4) + (0x0008); /* left justify, add 1/2 quantization step */
    if (iexp > 1)
      mant = mant << (iexp - 1);
    linbuf[n] = logbuf[n] > 127 ? mant : -mant;
  }
}

static void ulaw_compress(long lseg, short *linbuf, short *logbuf) {
  long n;
  short i, absno, segno, low_nibble, high_nibble;
  for (n = 0; n < lseg; n++) {
    absno = linbuf[n] < 0 ? ((~linbuf[n]) >> 2) + 33 : ((linbuf[n]) >> 2) + 33;
    if (absno > (0x1FFF))
      absno = (0x1FFF);
    i = absno >> 6;
    segno = 1;
    while (i != 0) {
      segno++;
      i >>= 1;
    }
    high_nibble = (0x0008) - segno;
    low_nibble = (absno >> segno) & (0x000F);
    low_nibble = (0x000F) - low_nibble;
    logbuf[n] = (high_nibble << 4) | low_nibble;
    if (linbuf[n] >= 0)
      logbuf[n] = logbuf[n] | 0x0080;
  }
}

static void ulaw_expand(long lseg, short *logbuf, short *linbuf) {
  long n;
  short segment, mantissa, exponent, sign, step;
  for (n = 0; n < lseg; n++) {
    sign = logbuf[n] < (0x0080) ? -1 : 1;
    mantissa = ~logbuf[n];
    exponent = (mantissa >> 4) & (0x0007);
    segment = exponent + 1;
    mantissa = mantissa & (0x000F);
    step = (4) << segment;
    linbuf[n] = sign * (((0x0080) << exponent) + step * mantissa + step / 2 - 4 * 33);
  }
}

static short lin[65536], codes[65536], dec[256], all_codes[256];

int main(void) {
  long n;
  for (n = 0; n < 65536; n++) lin[n] = (short)(n - 32768);
  for (n = 0; n < 256; n++) all_codes[n] = (short)n;

  alaw_compress(65536, lin, codes);
  for (n = 0; n < 65536; n++) putchar(codes[n] & 0xFF);
  ulaw_compress(65536, lin, codes);
  for (n = 0; n < 65536; n++) putchar(codes[n] & 0xFF);

  alaw_expand(256, all_codes, dec);
  for (n = 0; n < 256; n++) { putchar(dec[n] & 0xFF); putchar((dec[n] >> 8) & 0xFF); }
  ulaw_expand(256, all_codes, dec);
  for (n = 0; n < 256; n++) { putchar(dec[n] & 0xFF); putchar((dec[n] >> 8) & 0xFF); }
  return 0;
}
