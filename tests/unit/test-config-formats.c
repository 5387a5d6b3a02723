/* Kestrel's own config formats: the Scala tokenizer, the 2.x Scala and 1.x configgy readers,
 * format detection, errors with line and column, hostile inputs, and the Kestrel configs
 * shipped in config/ and kept from the field in tests/data/kestrel-configs/. */
#include <string.h>

#include <glib/gstdio.h>
#include <kestrel/error.h>
#include <valgrind/valgrind.h>

#include "config/config-draft.h"
#include "config/config-file.h"
#include "config/scala-lexer.h"
#include "server-config.h"

#define MB (G_GINT64_CONSTANT(1) << 20)

static gchar *scratch_dir;

static gchar *
source_path(const gchar *relative)
{
  const gchar *top = g_getenv("top_srcdir");
#ifdef KQ_TOP_SRCDIR
  if (top == NULL)
    top = KQ_TOP_SRCDIR;
#endif
  if (top == NULL)
    top = ".";
  return g_build_filename(top, relative, NULL);
}

/* Translate and load as a key file; the test fails on an error. */
static GKeyFile *
translate_ok(const gchar *text, KqConfigFormat format, GPtrArray *warnings)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *out = kq_config_translate(text, strlen(text), format, "t.cfg", scratch_dir,
                                              warnings, &error);
  GKeyFile *kf = g_key_file_new();

  g_assert_no_error(error);
  g_assert_nonnull(out);
  g_assert_true(g_key_file_load_from_data(kf, out, (gsize) -1, G_KEY_FILE_NONE, &error));
  g_assert_no_error(error);
  return kf;
}

/* The error message of a translation that must fail. */
static gchar *
translate_error(const gchar *text, gsize len, KqConfigFormat format)
{
  g_autoptr(GError) error = NULL;
  g_autofree gchar *out = kq_config_translate(text, len, format, "t.cfg", scratch_dir, NULL,
                                              &error);

  g_assert_null(out);
  g_assert_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG);
  return g_strdup(error->message);
}

static void
assert_value(GKeyFile *kf, const gchar *group, const gchar *key, const gchar *expected)
{
  g_autofree gchar *value = g_key_file_get_value(kf, group, key, NULL);
  g_assert_cmpstr(value, ==, expected);
}

/* ---- tokenizer --------------------------------------------------------------------------- */

static void
test_lexer_tokens(void)
{
  static const gchar text[] =
    "import a.b._\n"
    "// 注释 comment\n"
    "/* outer /* nested */ still */ x = 16.megabytes :: 10L, \"a\\\"b\" 1.5 -2 {}";
  static const struct {
    KqScalaTokenKind kind;
    const gchar *text;
    gint line, column;
  } expected[] = {
    { KQ_SCALA_IDENT, "import", 1, 1 }, { KQ_SCALA_IDENT, "a", 1, 8 },
    { KQ_SCALA_PUNCT, ".", 1, 9 }, { KQ_SCALA_IDENT, "b", 1, 10 },
    { KQ_SCALA_PUNCT, ".", 1, 11 }, { KQ_SCALA_IDENT, "_", 1, 12 },
    { KQ_SCALA_IDENT, "x", 3, 32 }, { KQ_SCALA_PUNCT, "=", 3, 34 },
    { KQ_SCALA_INT, "16", 3, 36 }, { KQ_SCALA_PUNCT, ".", 3, 38 },
    { KQ_SCALA_IDENT, "megabytes", 3, 39 }, { KQ_SCALA_PUNCT, "::", 3, 49 },
    { KQ_SCALA_INT, "10", 3, 52 }, { KQ_SCALA_PUNCT, ",", 3, 55 },
    { KQ_SCALA_STRING, "\"a\\\"b\"", 3, 57 }, { KQ_SCALA_DECIMAL, "1.5", 3, 64 },
    { KQ_SCALA_PUNCT, "-", 3, 68 }, { KQ_SCALA_INT, "2", 3, 69 },
    { KQ_SCALA_PUNCT, "{", 3, 71 }, { KQ_SCALA_PUNCT, "}", 3, 72 },
    { KQ_SCALA_EOF, "", 3, 73 },
  };
  KqScalaLexer lexer;
  KqScalaToken tok;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *value = NULL;

  kq_scala_lexer_init(&lexer, text, strlen(text), "t.scala");
  for (gsize i = 0; i < G_N_ELEMENTS(expected); i++) {
    g_assert_true(kq_scala_lexer_next(&lexer, &tok, &error));
    g_assert_no_error(error);
    g_assert_cmpint(tok.kind, ==, expected[i].kind);
    g_assert_cmpint((gint) tok.len, ==, (gint) strlen(expected[i].text));
    g_assert_cmpint(memcmp(tok.text, expected[i].text, tok.len), ==, 0);
    g_assert_cmpint(tok.line, ==, expected[i].line);
    g_assert_cmpint(tok.column, ==, expected[i].column);
    if (tok.kind == KQ_SCALA_STRING) {
      g_assert_true(kq_scala_string_value(&tok, "t.scala", &value, &error));
      g_assert_cmpstr(value, ==, "a\"b");
    }
  }
}

static void
test_lexer_errors(void)
{
  static const struct {
    const gchar *text;
    const gchar *message;
  } bad[] = {
    { "x = \"abc", "t.scala:1:5: unterminated string" },
    { "x = \"abc\ny\"", "t.scala:1:5: unterminated string" },
    { "a\n  /* open /* nested */ ", "t.scala:2:3: unterminated comment" },
    { "x = s\"hi $name\"", "t.scala:1:6: string interpolation" },
    { "x = \"\"\"raw\"\"\"", "t.scala:1:5: triple-quoted strings" },
    { "x = 'c'", "t.scala:1:5: character and symbol literals" },
    { "x = 0x1F", "t.scala:1:6: unexpected letter after a number" },
    { "x = `y`", "t.scala:1:5: back-quoted" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    KqScalaLexer lexer;
    KqScalaToken tok;
    g_autoptr(GError) error = NULL;
    gboolean ok;

    kq_scala_lexer_init(&lexer, bad[i].text, strlen(bad[i].text), "t.scala");
    while ((ok = kq_scala_lexer_next(&lexer, &tok, &error)) && tok.kind != KQ_SCALA_EOF)
      ;
    g_assert_false(ok);
    g_test_message("%s", error->message);
    g_assert_true(g_str_has_prefix(error->message, bad[i].message));
  }
}

/* ---- Kestrel 2.x Scala ------------------------------------------------------------------ */

static void
test_scala_every_construct(void)
{
  static const gchar text[] =
    "import com.twitter.conversions.storage._\n"
    "import com.twitter.conversions.time._\n"
    "import net.lag.kestrel.config.{KestrelConfig, QueueBuilder}\n"
    "/* a block /* nested */ comment */\n"
    "new KestrelConfig {\n"
    "  listenAddress = \"127.0.0.1\"; memcacheListenPort = Some(22134)\n"
    "  textListenPort = None\n"
    "  thriftListenPort = 2230\n"
    "  queuePath = \"/tmp/q \\\"x\\\"\"\n"
    "  clientTimeout = Some(30.seconds)\n"
    "  expirationTimerFrequency = 250.milliseconds\n"
    "  maxOpenTransactions = 100\n"
    "  connectionBacklog = Some(512)\n"
    "  statusFile = \"/tmp/status\"\n"
    "  defaultStatus = ReadOnly\n"
    "  statusChangeGracePeriod = 3.minutes\n"
    "  enableSessionTrace = true\n"
    "  zookeeper = None\n"
    "  default.maxItems = Int.MaxValue\n"
    "  default.maxSize = 1.gigabyte\n"
    "  default.maxAge = Some(3.days)\n"
    "  default.syncJournal = Duration.MaxValue\n"
    "  default.maxItemSize = 512.kilobytes\n"
    "  default.minJournalCompactDelay = 2.hours\n"
    "  admin.httpPort = 9990\n"
    "  queues = List(\n"
    "    new QueueBuilder { name = \"a\"; maxItems = 10L; maxMemorySize = 100.bytes },\n"
    "    new QueueBuilder() {\n"
    "      name = \"b\"\n"
    "      fanoutOnly = true\n"
    "      expireToQueue = Some(\"a\")\n"
    "      maxQueueAge = 2.hours\n"
    "      openTransactionTimeout = 1.minute\n"
    "      journaled = false\n"
    "      maxExpireSweep = 5\n"
    "      discardOldWhenFull = false\n"
    "      maxJournalSize = 16.megabyte\n"
    "      defaultJournalSize = 1.kilobyte\n"
    "    },\n"
    "  )\n"
    "  aliases = new AliasBuilder { name = \"al\"; destinationQueues = List(\"a\", \"b\",) }\n"
    "  loggers = new LoggerConfig {\n"
    "    node = \"\"\n"
    "    level = Level.DEBUG\n"
    "    handlers = new FileHandlerConfig { filename = \"/tmp/k.log\"; roll = Policy.Hourly }\n"
    "  }\n"
    "}\n";
  g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GKeyFile) kf = translate_ok(text, KQ_CONFIG_FORMAT_AUTO, warnings);

  assert_value(kf, "server", "listenAddress", "127.0.0.1");
  assert_value(kf, "server", "memcacheListenPort", "22134");
  assert_value(kf, "server", "textListenPort", "none");
  assert_value(kf, "server", "thriftListenPort", "2230");
  {
    g_autofree gchar *path = g_key_file_get_string(kf, "server", "queuePath", NULL);
    g_assert_cmpstr(path, ==, "/tmp/q \"x\"");
  }
  assert_value(kf, "server", "clientTimeout", "30.seconds");
  assert_value(kf, "server", "expirationTimerFrequency", "250.milliseconds");
  assert_value(kf, "server", "maxOpenTransactions", "100");
  assert_value(kf, "server", "connectionBacklog", "512");
  assert_value(kf, "server", "statusFile", "/tmp/status");
  assert_value(kf, "server", "defaultStatus", "READONLY");
  assert_value(kf, "server", "statusChangeGracePeriod", "3.minutes");
  assert_value(kf, "server", "enableSessionTrace", "true");
  assert_value(kf, "server", "adminHttpPort", "9990");
  assert_value(kf, "server", "logLevel", "debug");
  assert_value(kf, "server", "logFile", "/tmp/k.log");
  assert_value(kf, "server", "logRoll", "hourly");
  assert_value(kf, "default", "maxItems", "none");
  assert_value(kf, "default", "maxSize", "1.gigabyte");
  assert_value(kf, "default", "maxAge", "3.days");
  assert_value(kf, "default", "syncJournal", "none");
  assert_value(kf, "default", "maxItemSize", "512.kilobytes");
  assert_value(kf, "default", "minJournalCompactDelay", "2.hours");
  assert_value(kf, "queue a", "maxItems", "10");
  assert_value(kf, "queue a", "maxMemorySize", "100.bytes");
  assert_value(kf, "queue b", "fanoutOnly", "true");
  assert_value(kf, "queue b", "expireToQueue", "a");
  assert_value(kf, "queue b", "maxQueueAge", "2.hours");
  assert_value(kf, "queue b", "openTransactionTimeout", "1.minute");
  assert_value(kf, "queue b", "keepJournal", "false");
  assert_value(kf, "queue b", "maxExpireSweep", "5");
  assert_value(kf, "queue b", "discardOldWhenFull", "false");
  assert_value(kf, "queue b", "maxJournalSize", "16.megabyte");
  assert_value(kf, "queue b", "defaultJournalSize", "1.kilobyte");
  assert_value(kf, "alias al", "destinationQueues", "a;b");
  g_assert_cmpuint(warnings->len, ==, 0);
}

/* queues as a :: chain (with and without Nil), a single builder, Nil and List(). */
static void
test_scala_queue_lists(void)
{
  static const struct {
    const gchar *queues;
    const gchar *names;
  } forms[] = {
    { "new QueueBuilder { name = \"a\" } :: new QueueBuilder { name = \"b\" } :: Nil", "a b" },
    { "new QueueBuilder { name = \"a\" }\n  :: new QueueBuilder { name = \"b\" }", "a b" },
    { "new QueueBuilder { name = \"only\" }", "only" },
    { "Nil", "" },
    { "List()", "" },
    { "List(new QueueBuilder { name = \"x\" })", "x" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS(forms); i++) {
    g_autofree gchar *text = g_strdup_printf("new KestrelConfig {\n  queues = %s\n}\n",
                                             forms[i].queues);
    g_autoptr(GKeyFile) kf = translate_ok(text, KQ_CONFIG_FORMAT_SCALA, NULL);
    g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);
    g_autoptr(GString) names = g_string_new(NULL);

    for (gsize j = 0; groups[j] != NULL; j++)
      g_string_append_printf(names, "%s%s", names->len > 0 ? " " : "", groups[j] + 6);
    g_assert_cmpstr(names->str, ==, forms[i].names);
  }
}

/* Settings without an equivalent: accepted, one warning each, naming them. */
static void
test_scala_warnings(void)
{
  static const gchar text[] =
    "new KestrelConfig {\n"
    "  admin.statsNodes = new StatsConfig { reporters = new TimeSeriesCollectorConfig }\n"
    "  zookeeper = Some(new ZooKeeperBuilder { host = \"zk\" })\n"
    "  admin = new AdminServiceConfig { httpPort = 9990; statsNodes = Nil }\n"
    "  default.checkpointTimer = 1.second\n"
    "  loggers = new LoggerConfig {\n"
    "    handlers = new SyslogHandlerConfig { server = \"localhost\" }\n"
    "    useParents = false\n"
    "  }\n"
    "  beFactoryClass = Some(\"x.Y\")\n"
    "  debugLogQueues = Nil\n"
    "}\n";
  static const gchar *const expected[] = {
    "t.cfg:2:3: admin.statsNodes has no equivalent in kestreld and is ignored",
    "t.cfg:3:3: zookeeper has no equivalent",
    "t.cfg:4:53: admin.statsNodes has no equivalent",
    "t.cfg:5:3: default.checkpointTimer has no equivalent",
    "t.cfg:7:16: SyslogHandlerConfig has no equivalent",
    "t.cfg:8:5: loggers.useParents has no equivalent",
    "t.cfg:10:3: beFactoryClass has no equivalent",
  };
  g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GKeyFile) kf = translate_ok(text, KQ_CONFIG_FORMAT_SCALA, warnings);

  g_assert_cmpuint(warnings->len, ==, G_N_ELEMENTS(expected));
  for (gsize i = 0; i < G_N_ELEMENTS(expected); i++)
    g_assert_true(g_str_has_prefix(g_ptr_array_index(warnings, i), expected[i]));
  assert_value(kf, "server", "adminHttpPort", "9990");
}

static void
test_scala_errors(void)
{
  static const struct {
    const gchar *body; /* inside new KestrelConfig { ... }, which starts on line 1 */
    const gchar *message;
  } bad[] = {
    { "\n  queues = new QueueBuilder {\n    name = \"q\"\n    maxItems = 1.5\n  }",
      "t.cfg:4:16: maxItems: expected a whole number" },
    { "\n  queues = new QueueBuilder { name = \"q\"; maxItems = \"1.5M\" }",
      "t.cfg:2:54: maxItems: expected a whole number or 'none', got '1.5M'" },
    { "\n  memcacheListenPort = 70000", "t.cfg:2:24: memcacheListenPort: expected a port" },
    { "\n  colour = \"blue\"", "t.cfg:2:3: unknown KestrelConfig setting 'colour'" },
    { "\n  default.maxItemz = 3", "t.cfg:2:3: unknown QueueBuilder setting 'maxItemz'" },
    { "\n  def x = 1", "t.cfg:2:3: the keyword 'def' is outside the Scala subset" },
    { "\n  val x = 1", "t.cfg:2:3: the keyword 'val' is outside" },
    { "\n  queuePath = \"/a\" + \"/b\"", "t.cfg:2:20: expected a setting name or '}'" },
    { "\n  queuePath = path.concat(\"x\")", "t.cfg:2:26: a method call or block '('" },
    { "\n  queuePath = s\"/var/$x\"", "t.cfg:2:16: string interpolation" },
    { "\n  clientTimeout = 5.parsecs", "t.cfg:2:21: expected a unit" },
    { "\n  defaultStatus = Down", "t.cfg:2:19: defaultStatus: 'Down' is not a value" },
    { "\n  queues = new QueueBuilder { maxItems = 1 }", "t.cfg:2:12: new QueueBuilder without name" },
    { "\n  queues = new QueueBuilder { name = \"a/b\" }", "t.cfg:2:38: name: " },
    { "\n  queues = new AliasBuilder { name = \"a\" }",
      "t.cfg:2:12: queues expects new QueueBuilder { ... }, found a new ... block of AliasBuilder" },
    { "\n  queues = 3", "t.cfg:2:12: queues expects new QueueBuilder { ... } or a list" },
    { "\n  queuePath = List(\"a\")", "t.cfg:2:15: queuePath expects a single value, found a list" },
    { "\n  aliases = new AliasBuilder { name = \"a\"; destinationQueues = List(1) }",
      "t.cfg:2:69: destinationQueues expects queue names" },
    { "\n  queues = new QueueBuilder { name = \"a\" } :: Nil :: Nil",
      "t.cfg:2:51: expected the end of the list after Nil" },
    { "\n  queuePath = \"\\q\"", "t.cfg:2:16: unsupported escape" },
    { "\n  queuePath = ", "t.cfg:3:1: expected a value, found '}'" },
    { "\n  maxOpenTransactions = Some(1, 2)", "t.cfg:2:31: expected ')' (one value only)" },
    { "\n  loggers = 3", "t.cfg:2:13: loggers expects new LoggerConfig" },
    { "\n  loggers = new LoggerConfig { level = Level.LOUD }",
      "t.cfg:2:40: loggers.level: 'Level.LOUD' is not a value" },
    { "\n  queuePath += \"x\"", "t.cfg:2:13: the construct '+=' is outside" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autofree gchar *text = g_strdup_printf("new KestrelConfig {%s\n}\n", bad[i].body);
    g_autofree gchar *message = translate_error(text, strlen(text), KQ_CONFIG_FORMAT_SCALA);

    g_test_message("%s", message);
    g_assert_true(g_str_has_prefix(message, bad[i].message));
  }
}

static void
test_scala_file_errors(void)
{
  static const struct {
    const gchar *text;
    const gchar *message;
  } bad[] = {
    { "", "t.cfg:1:1: expected 'new KestrelConfig { ... }', found the end of the file" },
    { "import a.b._\nKestrelConfig {}", "t.cfg:2:1: expected 'new KestrelConfig" },
    { "new QueueBuilder {}", "t.cfg:1:1: expected 'new KestrelConfig { ... }', found 'new QueueBuilder'" },
    { "new KestrelConfig {\n  queuePath = \"x\"\n", "t.cfg:3:1: expected '}' to close the block" },
    { "new KestrelConfig {}\nnew KestrelConfig {}", "t.cfg:2:1: expected the end of the file" },
    { "import a.{b, c\n", "t.cfg:2:1: expected '}' to close the import" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autofree gchar *message = translate_error(bad[i].text, strlen(bad[i].text),
                                                KQ_CONFIG_FORMAT_SCALA);
    g_test_message("%s", message);
    g_assert_true(g_str_has_prefix(message, bad[i].message));
  }
}

/* ---- hostile inputs ----------------------------------------------------------------------- */

static GString *
deep_nesting(const gchar *open, const gchar *middle, const gchar *close, guint levels)
{
  GString *s = g_string_new(NULL);

  for (guint i = 0; i < levels; i++)
    g_string_append(s, open);
  g_string_append(s, middle);
  for (guint i = 0; i < levels; i++)
    g_string_append(s, close);
  return s;
}

static void
test_hostile_nesting(void)
{
  g_autoptr(GString) some = deep_nesting("Some(", "1", ")", 10000);
  g_autoptr(GString) blocks = deep_nesting("a {\n", "", "}\n", 10000);
  g_autoptr(GString) objects = deep_nesting("new X { y = ", "1", " }", 10000);
  g_autoptr(GString) comments = deep_nesting("/*", "", "*/", 10000);
  g_autofree gchar *scala = g_strdup_printf("new KestrelConfig { queuePath = %s }", some->str);
  g_autofree gchar *scala2 = g_strdup_printf("new KestrelConfig { queues = %s }", objects->str);
  g_autofree gchar *scala3 = g_strdup_printf("%s new KestrelConfig { }", comments->str);
  g_autofree gchar *m1 = translate_error(scala, strlen(scala), KQ_CONFIG_FORMAT_SCALA);
  g_autofree gchar *m2 = translate_error(blocks->str, blocks->len, KQ_CONFIG_FORMAT_CONFIGGY);
  g_autofree gchar *m3 = translate_error(scala2, strlen(scala2), KQ_CONFIG_FORMAT_SCALA);
  g_autoptr(GKeyFile) kf = translate_ok(scala3, KQ_CONFIG_FORMAT_SCALA, NULL);

  g_assert_nonnull(strstr(m1, "nested more than 64 levels deep"));
  g_test_message("%s", m2);
  /* Kestrel 1.x has no blocks inside queue blocks: refused at the second level. */
  g_assert_cmpstr(m2, ==, "t.cfg:2:1: block 'a' is not expected inside a queue block");
  g_assert_nonnull(strstr(m3, "nested more than 64 levels deep"));
}

static void
test_hostile_bytes(void)
{
  static const gchar nul[] = "new KestrelConfig {\n  queuePath = \"a\0b\"\n}";
  static const gchar bad_utf8[] = "port = 22133\n# caf\xc3\x28\n";
  g_autofree gchar *m1 = translate_error(nul, sizeof nul - 1, KQ_CONFIG_FORMAT_SCALA);
  g_autofree gchar *m2 = translate_error(bad_utf8, sizeof bad_utf8 - 1,
                                         KQ_CONFIG_FORMAT_CONFIGGY);
  g_autofree gchar *m3 = translate_error(nul, sizeof nul - 1, KQ_CONFIG_FORMAT_KEYFILE);

  g_assert_cmpstr(m1, ==, "t.cfg:2:17: a NUL byte is not allowed in a config file");
  g_assert_true(g_str_has_prefix(m2, "t.cfg:2:6: invalid UTF-8 (byte 0xc3)"));
  g_assert_cmpstr(m3, ==, m1);
}

/* A 100 MB line ends in a clear error after one pass over the text; long names and values
 * (1 MB here, which takes the same paths) give short messages. Under valgrind, which runs
 * each byte of the scan some fifty times slower, the line is 8 MB: the same code path. */
static void
test_hostile_long_line(void)
{
  const gsize size = (RUNNING_ON_VALGRIND ? 8 : 100) * MB, small = MB;
  gchar *text = g_malloc(size + 64);
  gsize n;
  g_autofree gchar *m1 = NULL, *m2 = NULL, *m3 = NULL;

  n = (gsize) g_snprintf(text, 64, "new KestrelConfig { queuePath = \"");
  memset(text + n, 'a', size);
  m1 = translate_error(text, n + size, KQ_CONFIG_FORMAT_SCALA);
  g_assert_cmpstr(m1, ==, "t.cfg:1:33: unterminated string: no closing '\"' on this line");

  text[n + small] = '"';
  memcpy(text + n + small + 1, " }", 2);
  m2 = translate_error(text, n + small + 3, KQ_CONFIG_FORMAT_SCALA);
  g_assert_cmpstr(m2, ==, "t.cfg:1:33: queuePath: a value of more than 4096 bytes is not "
                  "accepted");

  memset(text, 'x', small);
  memcpy(text + small, " = 1\n", 5);
  m3 = translate_error(text, small + 5, KQ_CONFIG_FORMAT_CONFIGGY);
  g_assert_true(g_str_has_prefix(m3, "t.cfg:1:1: unknown Kestrel 1.x setting 'xxxx"));
  g_assert_cmpuint(strlen(m3), <, 200);
  g_free(text);
}

/* ---- Kestrel 1.x configgy ------------------------------------------------------------------ */

static void
test_configgy_every_construct(void)
{
  g_autofree gchar *include = g_build_filename(scratch_dir, "extra.conf", NULL);
  static const gchar text[] =
    "# Kestrel 1.x\n"
    "port = 22134\n"
    "host = \"127.0.0.1\"\n"
    "queue_path = \"/tmp/q\"   # trailing comment\n"
    "timeout = 0\n"
    "max_journal_size = 16277216\n"
    "max_memory_size = 134217728\n"
    "max_journal_overflow = 10\n"
    "max_items = 1000\n"
    "max_age = 0\n"
    "sync_journal = false\n"
    "log {\n"
    "  filename = \"/tmp/k.log\"\n"
    "  roll = \"daily\"\n"
    "  level = \"fatal\"\n"
    "  console = true\n"
    "}\n"
    "queues {\n"
    "  a {\n"
    "    max_age = 30\n"
    "    journal = off\n"
    "    sync_journal = on\n"
    "    discard_old_when_full = yes\n"
    "    move_expired_to = \"b\"\n"
    "    max_size = 1024\n"
    "    max_item_size = 512\n"
    "    max_journal_size_absolute = 1048576\n"
    "    max_expire_sweep = 7\n"
    "  }\n"
    "}\n"
    "b { max_items = 5 }\n"
    "include \"extra.conf\"\n";
  g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GKeyFile) kf = NULL;

  g_assert_true(g_file_set_contents(include, "c {\n  timeout_ignored = 1\n}\n", -1, NULL));
  {
    g_autofree gchar *m = translate_error(text, strlen(text), KQ_CONFIG_FORMAT_CONFIGGY);
    g_autofree gchar *where = g_strdup_printf("%s:2:3: unknown Kestrel 1.x setting "
                                              "'timeout_ignored' in a queue block", include);
    g_assert_cmpstr(m, ==, where);
  }
  g_assert_true(g_file_set_contents(include, "c {\n  fanout_only = true\n}\n", -1, NULL));
  kf = translate_ok(text, KQ_CONFIG_FORMAT_AUTO, warnings);
  g_unlink(include);

  assert_value(kf, "server", "memcacheListenPort", "22134");
  assert_value(kf, "server", "listenAddress", "127.0.0.1");
  assert_value(kf, "server", "queuePath", "/tmp/q");
  assert_value(kf, "server", "clientTimeout", "none");
  assert_value(kf, "server", "logFile", "/tmp/k.log");
  assert_value(kf, "server", "logRoll", "daily");
  assert_value(kf, "server", "logLevel", "error");
  assert_value(kf, "default", "defaultJournalSize", "16277216");
  assert_value(kf, "default", "maxMemorySize", "134217728");
  assert_value(kf, "default", "maxItems", "1000");
  assert_value(kf, "default", "maxAge", "none");
  assert_value(kf, "default", "syncJournal", "never");
  assert_value(kf, "queue a", "maxAge", "30.seconds");
  assert_value(kf, "queue a", "keepJournal", "off");
  assert_value(kf, "queue a", "syncJournal", "0");
  assert_value(kf, "queue a", "discardOldWhenFull", "yes");
  assert_value(kf, "queue a", "expireToQueue", "b");
  assert_value(kf, "queue a", "maxSize", "1024");
  assert_value(kf, "queue a", "maxItemSize", "512");
  assert_value(kf, "queue a", "maxJournalSize", "1048576");
  assert_value(kf, "queue a", "maxExpireSweep", "7");
  assert_value(kf, "queue b", "maxItems", "5");
  assert_value(kf, "queue c", "fanoutOnly", "true");
  g_assert_cmpuint(warnings->len, ==, 2);
  g_assert_true(g_str_has_prefix(g_ptr_array_index(warnings, 0),
                                 "t.cfg:8:1: max_journal_overflow has no equivalent"));
  g_assert_true(g_str_has_prefix(g_ptr_array_index(warnings, 1),
                                 "t.cfg:16:3: log.console has no equivalent"));
}

static void
test_configgy_errors(void)
{
  static const struct {
    const gchar *text;
    const gchar *message;
  } bad[] = {
    { "port = 22133\nmax_items = lots\n", "t.cfg:2:13: max_items: expected a whole number" },
    { "port = 99999\n", "t.cfg:1:8: port: expected a port number" },
    { "colour = \"blue\"\n", "t.cfg:1:1: unknown Kestrel 1.x setting 'colour'" },
    { "q {\n  port = 1\n}\n", "t.cfg:2:3: unknown Kestrel 1.x setting 'port' in a queue block" },
    { "queues {\n  max_items = 3\n}\n", "t.cfg:2:3: 'max_items = ...' inside queues { }" },
    { "log {\n  x {\n  }\n}\n", "t.cfg:2:3: block 'x' is not expected inside log { }" },
    { "max_age = 1.5\n", "t.cfg:1:11: max_age expects a whole number of seconds" },
    { "sync_journal = maybe\n", "t.cfg:1:16: sync_journal expects true or false" },
    { "host = [\"a\", \"b\"]\n", "t.cfg:1:8: host expects a single value, found a list" },
    { "host = \"0.0.0.0\n", "t.cfg:1:8: unterminated string" },
    { "q (inherit=\"default\") {\n}\n", "t.cfg:1:3: configgy attributes" },
    { "q {\n  max_items = 3\n", "t.cfg:3:1: expected a setting name or '}', found the end" },
    { "port 22133\n", "t.cfg:1:6: expected '=' or '{' after the name" },
    { "port =\n", "t.cfg:2:1: expected a value, found the end of the file" },
    { "a/b {\n}\n", "t.cfg:1:2: unexpected character" },
    { "include \"missing.conf\"\n", "t.cfg:1:1: include: " },
    { "include missing\n", "t.cfg:1:9: expected a file name in quotes" },
    { "log {\n  level = \"loud\"\n}\n", "t.cfg:2:11: level: expected error, critical" },
    { "log {\n  roll = \"weekly\"\n}\n", "t.cfg:2:10: roll: expected never, hourly" },
    { "x = \"\\q\"\n", "t.cfg:1:6: unsupported escape" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autofree gchar *message = translate_error(bad[i].text, strlen(bad[i].text),
                                                KQ_CONFIG_FORMAT_CONFIGGY);
    g_test_message("%s", message);
    g_assert_true(g_str_has_prefix(message, bad[i].message));
  }
}

static void
test_configgy_include_cycle(void)
{
  g_autofree gchar *self = g_build_filename(scratch_dir, "self.conf", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(KqConfigDraft) draft = kq_config_draft_new();
  static const gchar text[] = "include \"self.conf\"\n";

  g_assert_true(g_file_set_contents(self, text, -1, NULL));
  g_assert_null(kq_config_translate(text, strlen(text), KQ_CONFIG_FORMAT_CONFIGGY, "t.cfg",
                                    scratch_dir, NULL, &error));
  g_assert_nonnull(strstr(error->message, "includes nested more than 16 deep"));
  g_clear_error(&error);
  /* Without a folder (the fuzz target) include is refused. */
  g_assert_null(kq_config_translate(text, strlen(text), KQ_CONFIG_FORMAT_CONFIGGY, "t.cfg",
                                    NULL, NULL, &error));
  g_assert_cmpstr(error->message, ==, "t.cfg:1:1: include is not available here");
  g_unlink(self);
}

/* ---- detection and the shipped files ---------------------------------------------------- */

static void
test_detect(void)
{
  static const struct {
    const gchar *text;
    KqConfigFormat format;
  } cases[] = {
    { "# comment\n\n[server]\nlistenAddress = 0.0.0.0\n", KQ_CONFIG_FORMAT_KEYFILE },
    { "[queue a]\n", KQ_CONFIG_FORMAT_KEYFILE },
    { "import com.twitter.conversions.time._\nnew KestrelConfig {}\n", KQ_CONFIG_FORMAT_SCALA },
    { "// dev\n/* x */ new KestrelConfig {}\n", KQ_CONFIG_FORMAT_SCALA },
    { "# kestrel 1.x\nport = 22133\n", KQ_CONFIG_FORMAT_CONFIGGY },
    { "newer = 1\n", KQ_CONFIG_FORMAT_CONFIGGY },
    { "log {\n}\n", KQ_CONFIG_FORMAT_CONFIGGY },
    { "", KQ_CONFIG_FORMAT_CONFIGGY },
  };
  KqConfigFormat f;

  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++)
    g_assert_cmpint(kq_config_format_detect(cases[i].text, strlen(cases[i].text)), ==,
                    cases[i].format);
  {
    /* A byte order mark is skipped: detection and positions as without it. */
    static const gchar bom[] = "\xef\xbb\xbfnew KestrelConfig {\n  colour = 1\n}\n";
    g_autofree gchar *m = translate_error(bom, strlen(bom), KQ_CONFIG_FORMAT_AUTO);
    g_assert_cmpstr(m, ==, "t.cfg:2:3: unknown KestrelConfig setting 'colour'");
  }
  g_assert_true(kq_config_format_from_string("Scala", &f));
  g_assert_cmpint(f, ==, KQ_CONFIG_FORMAT_SCALA);
  g_assert_true(kq_config_format_from_string("configgy", &f));
  g_assert_cmpint(f, ==, KQ_CONFIG_FORMAT_CONFIGGY);
  g_assert_true(kq_config_format_from_string("keyfile", &f));
  g_assert_cmpint(f, ==, KQ_CONFIG_FORMAT_KEYFILE);
  g_assert_false(kq_config_format_from_string("yaml", &f));
}

/* Every queue (and alias) of `a` resolves as in `b`, and both know the same names. */
static void
assert_same_queues(const KqServerConfig *a, const KqServerConfig *b)
{
  g_autoptr(GPtrArray) names_a = kq_config_set_queue_names(a->queues);
  g_autoptr(GPtrArray) names_b = kq_config_set_queue_names(b->queues);
  g_autoptr(GPtrArray) aliases_a = kq_config_set_alias_names(a->queues);
  g_autoptr(GPtrArray) aliases_b = kq_config_set_alias_names(b->queues);

  g_assert_cmpuint(names_a->len, ==, names_b->len);
  g_assert_cmpuint(aliases_a->len, ==, aliases_b->len);
  g_ptr_array_add(names_a, (gpointer) "some_other_queue");
  for (guint i = 0; i < names_a->len; i++) {
    const gchar *name = g_ptr_array_index(names_a, i);
    KqQueueSettings sa, sb;

    kq_config_set_resolve(a->queues, name, &sa);
    kq_config_set_resolve(b->queues, name, &sb);
    for (gsize k = 0; kq_settings_option_names[k] != NULL; k++) {
      g_autofree gchar *va = kq_settings_format(&sa, kq_settings_option_names[k]);
      g_autofree gchar *vb = kq_settings_format(&sb, kq_settings_option_names[k]);
      g_assert_cmpstr(va, ==, vb);
    }
    kq_settings_clear(&sa);
    kq_settings_clear(&sb);
  }
  for (guint i = 0; i < aliases_a->len; i++) {
    const gchar *name = g_ptr_array_index(aliases_a, i);
    g_autofree gchar *da = g_strjoinv(";", (gchar **) kq_config_set_alias_destinations(a->queues, name));
    g_autofree gchar *db = g_strjoinv(";", (gchar **) kq_config_set_alias_destinations(b->queues, name));
    g_assert_cmpstr(da, ==, db);
  }
}

static KqServerConfig *
load_source(const gchar *relative, guint expected_warnings)
{
  g_autofree gchar *path = source_path(relative);
  g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GError) error = NULL;
  KqServerConfig *c = kq_server_config_load_as(path, KQ_CONFIG_FORMAT_AUTO, warnings, &error);

  g_assert_no_error(error);
  g_assert_nonnull(c);
  g_assert_cmpuint(warnings->len, ==, expected_warnings);
  return c;
}

/* The Scala files in config/kestrel-2.x say what the key files in config/ say; the 1.x files
 * load. */
static void
test_shipped_configs(void)
{
  g_autoptr(KqServerConfig) dev_scala = load_source("config/kestrel-2.x/development.scala", 1);
  g_autoptr(KqServerConfig) dev_conf = load_source("config/development.conf", 0);
  g_autoptr(KqServerConfig) prod_scala = load_source("config/kestrel-2.x/production.scala", 1);
  g_autoptr(KqServerConfig) prod_conf = load_source("config/production.conf", 0);
  g_autoptr(KqServerConfig) dev_1x = load_source("config/kestrel-1.x/development.conf", 0);
  g_autoptr(KqServerConfig) prod_1x = load_source("config/kestrel-1.x/production.conf", 1);

  g_assert_cmpint(dev_scala->config_format, ==, KQ_CONFIG_FORMAT_SCALA);
  g_assert_cmpint(dev_conf->config_format, ==, KQ_CONFIG_FORMAT_KEYFILE);
  g_assert_cmpint(dev_1x->config_format, ==, KQ_CONFIG_FORMAT_CONFIGGY);
  assert_same_queues(dev_scala, dev_conf);
  assert_same_queues(prod_scala, prod_conf);
  g_assert_cmpstr(prod_scala->log_roll, ==, prod_conf->log_roll);
  g_assert_cmpstr(prod_scala->log_file, ==, prod_conf->log_file);
  g_assert_cmpint(prod_scala->client_timeout_ms, ==, prod_conf->client_timeout_ms);
  g_assert_cmpint(dev_scala->client_timeout_ms, ==, dev_conf->client_timeout_ms);
  g_assert_cmpint(dev_scala->admin_port, ==, dev_conf->admin_port);
  g_assert_cmpstr(dev_scala->queue_path, ==, dev_conf->queue_path);
  g_assert_cmpint(dev_1x->client_timeout_ms, ==, 30000);
  g_assert_cmpint(prod_1x->memcache_port, ==, 22133);
  g_assert_cmpstr(prod_1x->log_roll, ==, "daily");
}

/* The Kestrel config blocks of the field reports in tests/data/kestrel-configs load as they
 * are, Chinese comments included. */
static void
test_seed_configs(void)
{
  g_autoptr(KqServerConfig) dev = load_source("tests/data/kestrel-configs/seed-000-development.scala", 1);
  g_autoptr(KqServerConfig) prod = load_source("tests/data/kestrel-configs/seed-000-production.scala", 1);
  g_autoptr(KqServerConfig) dev_1x = load_source("tests/data/kestrel-configs/seed-001-development.conf", 0);
  g_autoptr(KqServerConfig) prod_1x = load_source("tests/data/kestrel-configs/seed-001-production.conf", 0);
  g_autoptr(KqServerConfig) dev_conf = load_source("config/development.conf", 0);
  g_autoptr(KqServerConfig) prod_conf = load_source("config/production.conf", 0);

  assert_same_queues(dev, dev_conf);
  assert_same_queues(prod, prod_conf);
  g_assert_cmpstr(dev->log_file, ==, "/var/log/kestrel/kestrel.log");
  g_assert_cmpstr(prod->log_roll, ==, "sighup");
  g_assert_cmpstr(dev_1x->log_file, ==, "/var/logs/kestrel_development.log");
  g_assert_cmpstr(prod_1x->log_file, ==, "/var/logs/kestrel.log");
  g_assert_cmpstr(prod_1x->log_roll, ==, "daily");
  g_assert_cmpstr(prod_1x->queue_path, ==, "/var/spool/kestrel");
}

/* --print-config's text loads back to the same settings. */
static void
test_print_config_round_trip(void)
{
  g_autoptr(KqServerConfig) dev = load_source("config/kestrel-2.x/development.scala", 1);
  g_autofree gchar *text = kq_server_config_to_key_file_text(dev);
  g_autofree gchar *path = g_build_filename(scratch_dir, "printed.conf", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(KqServerConfig) back = NULL;
  g_autofree gchar *text2 = NULL;

  g_assert_true(g_file_set_contents(path, text, -1, NULL));
  back = kq_server_config_load(path, &error);
  g_assert_no_error(error);
  g_assert_cmpint(back->config_format, ==, KQ_CONFIG_FORMAT_KEYFILE);
  assert_same_queues(dev, back);
  g_assert_cmpint(back->client_timeout_ms, ==, dev->client_timeout_ms);
  g_assert_cmpint(back->expiration_timer_ms, ==, dev->expiration_timer_ms);
  g_assert_cmpint(back->max_open_transactions, ==, dev->max_open_transactions);
  g_assert_cmpstr(back->queue_path, ==, dev->queue_path);
  g_assert_nonnull(strstr(text, "# warning: "));
  g_assert_nonnull(strstr(text, "development.scala:24: default.defaultJournalSize\n"));
  /* The file's words stay; a value the command line changed is printed with a note. */
  g_assert_nonnull(strstr(text, "\nclientTimeout=30.seconds\n"));
  g_assert_nonnull(strstr(text, "\n# built-in default or command line\nconnectionBacklog=1024\n"));
  g_free(dev->queue_path);
  dev->queue_path = g_strdup("/srv/queues");
  text2 = kq_server_config_to_key_file_text(dev);
  g_assert_nonnull(strstr(text2, "queuePath overridden on the command line (the file says "
                          "spool)\nqueuePath=/srv/queues\n"));
  g_unlink(path);
}

/* reload reads the file in the format it was started with and keeps nothing of a bad one. */
static void
test_reload_formats(void)
{
  g_autofree gchar *path = g_build_filename(scratch_dir, "reload.cfg", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(KqConfigSet) set = NULL;
  KqQueueSettings s;

  g_assert_true(g_file_set_contents(path, "new KestrelConfig {\n  queues = new QueueBuilder "
                                    "{ name = \"a\"; maxItems = 5 }\n}\n", -1, NULL));
  set = kq_server_config_load_queues_as(path, KQ_CONFIG_FORMAT_SCALA, &error);
  g_assert_no_error(error);
  kq_config_set_resolve(set, "a", &s);
  g_assert_cmpint(s.max_items, ==, 5);
  kq_settings_clear(&s);
  g_assert_null(kq_server_config_load_queues_as(path, KQ_CONFIG_FORMAT_CONFIGGY, &error));
  g_assert_error(error, KQ_ERROR, KQ_ERROR_BAD_CONFIG);
  g_unlink(path);
}

int
main(int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  int rc;

  g_test_init(&argc, &argv, NULL);
  scratch_dir = g_dir_make_tmp("kestrel-test-formats-XXXXXX", &error);
  g_assert_no_error(error);

  g_test_add_func("/config-formats/lexer/tokens", test_lexer_tokens);
  g_test_add_func("/config-formats/lexer/errors", test_lexer_errors);
  g_test_add_func("/config-formats/scala/every-construct", test_scala_every_construct);
  g_test_add_func("/config-formats/scala/queue-lists", test_scala_queue_lists);
  g_test_add_func("/config-formats/scala/warnings", test_scala_warnings);
  g_test_add_func("/config-formats/scala/errors", test_scala_errors);
  g_test_add_func("/config-formats/scala/file-errors", test_scala_file_errors);
  g_test_add_func("/config-formats/hostile/nesting", test_hostile_nesting);
  g_test_add_func("/config-formats/hostile/bytes", test_hostile_bytes);
  g_test_add_func("/config-formats/hostile/long-line", test_hostile_long_line);
  g_test_add_func("/config-formats/configgy/every-construct", test_configgy_every_construct);
  g_test_add_func("/config-formats/configgy/errors", test_configgy_errors);
  g_test_add_func("/config-formats/configgy/include-cycle", test_configgy_include_cycle);
  g_test_add_func("/config-formats/detect", test_detect);
  g_test_add_func("/config-formats/shipped", test_shipped_configs);
  g_test_add_func("/config-formats/seeds", test_seed_configs);
  g_test_add_func("/config-formats/print-config", test_print_config_round_trip);
  g_test_add_func("/config-formats/reload", test_reload_formats);
  rc = g_test_run();
  g_rmdir(scratch_dir);
  g_free(scratch_dir);
  return rc;
}
