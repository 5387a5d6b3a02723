/* kestrel-load's items (src/tools/load-item.c): the filler follows its formula at every size,
 * a filled item passes its check, and any changed byte, a wrong size or another item's payload
 * fails it. */
#include "config.h"

#include <string.h>

#include <glib.h>

#include "load-item.h"

static const gsize sizes[] = { 16, 17, 23, 24, 41, 42, 43, 67, 68, 1000, 65536, 512 * 1024 + 3 };

static void
test_filler_follows_its_formula(void)
{
  for (guint s = 0; s < G_N_ELEMENTS(sizes); s++) {
    g_autofree guint8 *buf = g_malloc(sizes[s]);
    guint64 seq = 1000003 + s;

    load_item_fill(buf, sizes[s], seq, 7);
    for (gsize i = LOAD_ITEM_HEADER; i < sizes[s]; i++)
      g_assert_cmpint(buf[i], ==, 'a' + (seq + i) % 26);
  }
}

static void
test_filled_item_checks_out(void)
{
  for (guint s = 0; s < G_N_ELEMENTS(sizes); s++) {
    g_autofree guint8 *buf = g_malloc(sizes[s]);
    guint64 seq = 0;
    guint32 producer = 0;

    load_item_fill(buf, sizes[s], 424242 + s, 9 + s);
    g_assert_true(load_item_check(buf, sizes[s], sizes[s], &seq, &producer));
    g_assert_cmpuint(seq, ==, 424242 + s);
    g_assert_cmpuint(producer, ==, 9 + s);
    /* a size the run does not use */
    g_assert_false(load_item_check(buf, sizes[s], sizes[s] + 1, &seq, &producer));
  }
}

/* Every byte of an item, flipped one bit at a time (all 8 bits, every position of small
 * items; a spread of positions in large ones), fails the check. */
static void
test_any_changed_byte_fails(void)
{
  for (guint s = 0; s < G_N_ELEMENTS(sizes); s++) {
    gsize size = sizes[s];
    g_autofree guint8 *buf = g_malloc(size);
    gsize step = size <= 1000 ? 1 : size / 997;
    guint64 seq;
    guint32 producer;

    load_item_fill(buf, size, 77 + s, 3);
    for (gsize i = 0; i < size; i += (i < 64 || size - i <= 64) ? 1 : step) {
      for (guint bit = 0; bit < 8; bit++) {
        buf[i] ^= (guint8) (1u << bit);
        g_assert_false(load_item_check(buf, size, size, &seq, &producer));
        buf[i] ^= (guint8) (1u << bit);
      }
    }
    g_assert_true(load_item_check(buf, size, size, &seq, &producer));
  }
}

/* Two 8-byte words of the filler swapped fail the check, whether the checksum takes them in
 * one lane or in two. */
static void
test_swapped_words_fail(void)
{
  const gsize size = 512 * 1024;
  g_autofree guint8 *buf = g_malloc(size);
  guint64 seq;
  guint32 producer;
  const gsize pairs[][2] = { { 16, 24 }, { 16, 48 }, { 1000, 1008 }, { 4096, 4096 + 32 * 7 },
                             { 16, size - 16 } };

  load_item_fill(buf, size, 5, 2);
  for (guint p = 0; p < G_N_ELEMENTS(pairs); p++) {
    guint8 a[8], b[8];
    memcpy(a, buf + pairs[p][0], 8);
    memcpy(b, buf + pairs[p][1], 8);
    g_assert_true(memcmp(a, b, 8) != 0); /* the filler's period (26) keeps them apart */
    memcpy(buf + pairs[p][0], b, 8);
    memcpy(buf + pairs[p][1], a, 8);
    g_assert_false(load_item_check(buf, size, size, &seq, &producer));
    memcpy(buf + pairs[p][0], a, 8);
    memcpy(buf + pairs[p][1], b, 8);
  }
  g_assert_true(load_item_check(buf, size, size, &seq, &producer));
}

/* Another item's payload under this item's header fails: the filler differs per sequence. */
static void
test_swapped_payload_fails(void)
{
  const gsize size = 4096;
  g_autofree guint8 *a = g_malloc(size);
  g_autofree guint8 *b = g_malloc(size);
  guint64 seq;
  guint32 producer;

  load_item_fill(a, size, 10, 1);
  load_item_fill(b, size, 11, 1);
  memcpy(a + LOAD_ITEM_HEADER, b + LOAD_ITEM_HEADER, size - LOAD_ITEM_HEADER);
  g_assert_false(load_item_check(a, size, size, &seq, &producer));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/load-item/filler-follows-its-formula", test_filler_follows_its_formula);
  g_test_add_func("/load-item/filled-item-checks-out", test_filled_item_checks_out);
  g_test_add_func("/load-item/any-changed-byte-fails", test_any_changed_byte_fails);
  g_test_add_func("/load-item/swapped-payload-fails", test_swapped_payload_fails);
  g_test_add_func("/load-item/swapped-words-fail", test_swapped_words_fail);
  return g_test_run();
}
