/* libFuzzer target for the Kestrel scala config reader: any input ends in key file text or
 * in an error naming a line and column, never both and never a crash; the key file text always
 * loads back as a key file (values are escaped, groups well formed). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config-file.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  GError *error = NULL;
  gchar *text = kq_config_translate((const gchar *) data, size,
                                    KQ_CONFIG_FORMAT_SCALA,
                                    "fuzz", NULL, NULL, &error);

  CHECK((text == NULL) != (error == NULL));
  if (text != NULL) {
    GKeyFile *key_file = g_key_file_new();
    CHECK(g_key_file_load_from_data(key_file, text, (gsize) -1, G_KEY_FILE_NONE, NULL));
    g_key_file_unref(key_file);
    g_free(text);
  } else {
    CHECK(g_str_has_prefix(error->message, "fuzz:"));
    g_error_free(error);
  }
  return 0;
}
