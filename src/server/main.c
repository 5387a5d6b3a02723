/* kestreld: command line, config file, logging, optional daemon mode and pid file, then the
 * server (SPEC 8). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "log.h"
#include "server-config.h"
#include "server.h"

/* Exit statuses, as documented in --help. */
enum {
  EXIT_OK = 0,
  EXIT_RUNTIME = 1, /* the server could not start or failed */
  EXIT_USAGE = 2,   /* bad command line or config file */
};

typedef struct {
  gchar *config_file;
  gchar *config_format;
  gboolean check_config;
  gboolean print_config;
  gchar *listen;
  gchar *memcache_port;
  gchar *text_port;
  gchar *thrift_port;
  gchar *admin_port;
  gchar *queue_path;
  gchar *log_file;
  gchar *worker_threads;
  gboolean daemonize;
  gchar *pidfile;
  gboolean version;
} Options;

static void
options_clear(Options *o)
{
  g_free(o->config_file);
  g_free(o->config_format);
  g_free(o->listen);
  g_free(o->memcache_port);
  g_free(o->text_port);
  g_free(o->thrift_port);
  g_free(o->admin_port);
  g_free(o->queue_path);
  g_free(o->log_file);
  g_free(o->worker_threads);
  g_free(o->pidfile);
}

static const gchar description[] =
  "kestreld is a Kestrel-compatible message queue server speaking the memcache (default port\n"
  "22133), text (2222) and Thrift (2229) protocols, with an admin HTTP port (2223, on\n"
  "adminListenAddress, 127.0.0.1 by default: stats, /metrics, /shutdown.txt and a dashboard at\n"
  "/; see docs/admin.md). Queues are journaled in the queue folder in Kestrel 2.4's format.\n"
  "\n"
  "Configuration:\n"
  "  Settings come from the built-in defaults, then the config file (-f FILE, or the\n"
  "  KESTRELD_CONFIG environment variable when -f is absent), then the command-line options\n"
  "  above, which override the file. The file is a GLib key file with [server], [default],\n"
  "  [queue NAME] and [alias NAME] groups; see docs/configuration.md. Relative paths in it\n"
  "  (queuePath, statusFile, logFile) are taken relative to the current directory.\n"
  "  Kestrel's own files are read too: a 2.x Scala config (new KestrelConfig { ... }) or a\n"
  "  1.x configgy config (key = value, name { ... }), detected from the content unless\n"
  "  --config-format says which; settings without an equivalent are accepted with a\n"
  "  warning. --print-config shows the translation as a key file.\n"
  "  Without logFile the log goes to stderr; with --daemonize that is /dev/null once the\n"
  "  server has started, so set logFile for a daemon.\n"
  "\n"
  "Signals:\n"
  "  SIGTERM, SIGINT  stop accepting clients, flush the journals and exit 0.\n"
  "  SIGHUP           reopen the log file (for logrotate).\n"
  "\n"
  "Environment:\n"
  "  KESTRELD_CONFIG  config file to read when -f/--config is not given.\n"
  "\n"
  "Exit status:\n"
  "  0  clean shutdown (or --help/--version).\n"
  "  1  the server could not start (port in use, queue folder locked or unwritable, log\n"
  "     file, fork or pid file failure) or stopped on an error.\n"
  "  2  bad command line or bad config file (the message names the file, group and key,\n"
  "     or the line and column of a Kestrel config).\n";

static gboolean
parse_options(int *argc, char ***argv, Options *o, GError **error)
{
  const GOptionEntry entries[] = {
    { "config", 'f', 0, G_OPTION_ARG_FILENAME, &o->config_file,
      "Read the configuration from FILE (default: $KESTRELD_CONFIG, else built-in defaults).",
      "FILE" },
    { "config-format", 0, 0, G_OPTION_ARG_STRING, &o->config_format,
      "Read the config file as FORMAT: keyfile, scala (Kestrel 2.x) or configgy (Kestrel 1.x) "
      "(default: detected from the content).", "FORMAT" },
    { "check-config", 0, 0, G_OPTION_ARG_NONE, &o->check_config,
      "Check the config file, print its warnings and exit (0 if it loads, 2 if not).", NULL },
    { "print-config", 0, 0, G_OPTION_ARG_NONE, &o->print_config,
      "Print the resolved configuration as a commented key file and exit.", NULL },
    { "listen", 0, 0, G_OPTION_ARG_STRING, &o->listen,
      "Listen for clients on ADDR (overrides listenAddress; default 0.0.0.0).", "ADDR" },
    { "memcache-port", 0, 0, G_OPTION_ARG_STRING, &o->memcache_port,
      "Serve the memcache protocol on port N; 0 disables it (default 22133).", "N" },
    { "text-port", 0, 0, G_OPTION_ARG_STRING, &o->text_port,
      "Serve the text protocol on port N; 0 disables it (default 2222).", "N" },
    { "thrift-port", 0, 0, G_OPTION_ARG_STRING, &o->thrift_port,
      "Serve the Thrift protocol on port N; 0 disables it (default 2229).", "N" },
    { "admin-port", 0, 0, G_OPTION_ARG_STRING, &o->admin_port,
      "Serve the admin HTTP interface on port N; 0 disables it (default 2223).", "N" },
    { "queue-path", 0, 0, G_OPTION_ARG_FILENAME, &o->queue_path,
      "Keep queue journals in DIR (overrides queuePath; default /var/spool/kestrel).", "DIR" },
    { "log-file", 0, 0, G_OPTION_ARG_FILENAME, &o->log_file,
      "Write the log to FILE (overrides logFile; default stderr).", "FILE" },
    { "worker-threads", 0, 0, G_OPTION_ARG_STRING, &o->worker_threads,
      "Serve memcache and text clients on N threads (overrides workerThreads; default auto: one "
      "per core, at most 4).", "N" },
    { "daemonize", 0, 0, G_OPTION_ARG_NONE, &o->daemonize,
      "Run in the background; returns once the server is listening, or fails with its error.",
      NULL },
    { "pidfile", 0, 0, G_OPTION_ARG_FILENAME, &o->pidfile,
      "Write the server's process id to FILE once it runs; the file is removed at exit.",
      "FILE" },
    { "version", 'V', 0, G_OPTION_ARG_NONE, &o->version,
      "Print \"kestreld VERSION\" and exit.", NULL },
    { NULL },
  };
  g_autoptr(GOptionContext) context = g_option_context_new("- Kestrel-compatible queue server");

  g_option_context_add_main_entries(context, entries, NULL);
  g_option_context_set_description(context, description);
  if (!g_option_context_parse(context, argc, argv, error))
    return FALSE;
  if (*argc > 1) {
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED, "unexpected argument '%s'",
                (*argv)[1]);
    return FALSE;
  }
  return TRUE;
}

static gboolean
override_port(gint *port, const gchar *text, const gchar *option, GError **error)
{
  g_autoptr(GError) local = NULL;

  if (text == NULL)
    return TRUE;
  if (!kq_server_config_parse_port(text, port, &local)) {
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--%s: %s", option,
                local->message);
    return FALSE;
  }
  return TRUE;
}

/* Command-line options override the file. */
static gboolean
apply_overrides(KqServerConfig *config, const Options *o, GError **error)
{
  if (o->listen != NULL) {
    if (*o->listen == '\0') {
      g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                  "--listen: expected an IP address or host name, got ''");
      return FALSE;
    }
    g_free(config->listen_address);
    config->listen_address = g_strdup(o->listen);
  }
  if (o->queue_path != NULL) {
    if (*o->queue_path == '\0') {
      g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                  "--queue-path: expected a directory, got ''");
      return FALSE;
    }
    g_free(config->queue_path);
    config->queue_path = g_strdup(o->queue_path);
  }
  if (o->log_file != NULL) {
    if (*o->log_file == '\0') {
      g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                  "--log-file: expected a file, got ''");
      return FALSE;
    }
    g_free(config->log_file);
    config->log_file = g_strdup(o->log_file);
  }
  if (o->worker_threads != NULL) {
    g_autoptr(GError) local = NULL;
    if (!kq_server_config_parse_worker_threads(o->worker_threads, &config->worker_threads,
                                               &local)) {
      g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--worker-threads: %s",
                  local->message);
      return FALSE;
    }
  }
  return override_port(&config->memcache_port, o->memcache_port, "memcache-port", error) &&
         override_port(&config->text_port, o->text_port, "text-port", error) &&
         override_port(&config->thrift_port, o->thrift_port, "thrift-port", error) &&
         override_port(&config->admin_port, o->admin_port, "admin-port", error);
}

/* ---- daemon mode ------------------------------------------------------------------------ */

/* Fork; the parent waits on a pipe for the child's verdict and exits with it, so start-up
 * errors (port in use, locked folder, ...) still reach the user's terminal. Returns the
 * write end of the pipe in the child. */
static int
daemonize(void)
{
  int fds[2];
  pid_t pid;

  if (pipe(fds) != 0) {
    fprintf(stderr, "kestreld: cannot create a pipe: %s\n", g_strerror(errno));
    exit(EXIT_RUNTIME);
  }
  pid = fork();
  if (pid < 0) {
    fprintf(stderr, "kestreld: cannot fork: %s\n", g_strerror(errno));
    exit(EXIT_RUNTIME);
  }
  if (pid > 0) {
    GString *report = g_string_new(NULL);
    char buf[512];
    ssize_t n;

    close(fds[1]);
    while ((n = read(fds[0], buf, sizeof buf)) != 0) {
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        break;
      g_string_append_len(report, buf, n);
    }
    /* One NUL byte means "running"; anything else is the error text. */
    if (report->len == 1 && report->str[0] == '\0')
      _exit(EXIT_OK);
    if (report->len == 0)
      fprintf(stderr, "kestreld: the server exited during start-up\n");
    else
      fprintf(stderr, "kestreld: %s\n", report->str);
    _exit(EXIT_RUNTIME);
  }

  close(fds[0]);
  fcntl(fds[1], F_SETFD, FD_CLOEXEC); /* not for anything the server may spawn */
  if (setsid() < 0)
    fprintf(stderr, "kestreld: setsid failed: %s\n", g_strerror(errno));
  if (chdir("/") != 0)
    fprintf(stderr, "kestreld: cannot change to /: %s\n", g_strerror(errno));
  int null_fd = open("/dev/null", O_RDWR);
  if (null_fd >= 0) {
    dup2(null_fd, STDIN_FILENO);
    if (null_fd != STDIN_FILENO)
      close(null_fd);
  }
  return fds[1];
}

static void
report_to_parent(int *fd, const gchar *error_message)
{
  const gchar *text = error_message != NULL ? error_message : "";
  gsize len = error_message != NULL ? strlen(text) : 1; /* "" + NUL = success */
  ssize_t n;

  if (*fd < 0)
    return;
  while (len > 0) {
    n = write(*fd, text, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    text += n;
    len -= (gsize) n;
  }
  close(*fd);
  *fd = -1;
}

/* A start-up error goes to the terminal once: through the parent in daemon mode. */
static void
fail_start(int *report_fd, const gchar *message)
{
  if (*report_fd >= 0)
    report_to_parent(report_fd, message);
  else
    fprintf(stderr, "kestreld: %s\n", message);
}

/* After a successful start the terminal is let go: stdout/stderr go to /dev/null. */
static void
detach_stdio(void)
{
  int null_fd = open("/dev/null", O_RDWR);

  if (null_fd < 0)
    return;
  dup2(null_fd, STDOUT_FILENO);
  dup2(null_fd, STDERR_FILENO);
  if (null_fd > STDERR_FILENO)
    close(null_fd);
}

/* Written to a temporary file and renamed, so readers never see a half-written pid. */
static gboolean
write_pidfile(const gchar *path, GError **error)
{
  g_autofree gchar *text = g_strdup_printf("%ld\n", (long) getpid());
  g_autoptr(GError) local = NULL;

  if (!g_file_set_contents_full(path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0644, &local)) {
    g_set_error(error, G_FILE_ERROR, local->code, "cannot write pid file: %s", local->message);
    return FALSE;
  }
  return TRUE;
}

/* Large items (64 KB to a few MB) are allocated and freed on every put and get. glibc's
 * defaults hand blocks above 128 KB back to the kernel (mmap, or trimming the heap once 2 x the
 * largest such block is free), so each new one is faulted in again page by page: on a flood of
 * 512 KB items that was most of the server's CPU. Blocks up to 4 MB come from the heap instead,
 * and up to 8 MB of free heap per arena stays mapped. GLIBC_TUNABLES naming a glibc.malloc
 * setting leaves the allocator to the operator. */
static void
tune_malloc(void)
{
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD) && defined(M_TRIM_THRESHOLD)
  const char *tunables = g_getenv("GLIBC_TUNABLES");

  if (tunables != NULL && strstr(tunables, "glibc.malloc.") != NULL)
    return;
  mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
#endif
}

int
main(int argc, char **argv)
{
  Options options = { 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(KqServerConfig) config = NULL;
  g_autofree gchar *pidfile = NULL;
  g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
  KqConfigFormat format = KQ_CONFIG_FORMAT_AUTO;
  const gchar *config_path;
  KqServer *server;
  int report_fd = -1;
  int rc;

  tune_malloc();
  /* Only the character set: numbers on the wire must not follow the user's locale. */
  setlocale(LC_CTYPE, "");
  if (!parse_options(&argc, &argv, &options, &error)) {
    fprintf(stderr, "kestreld: %s\nTry 'kestreld --help' for more information.\n",
            error->message);
    options_clear(&options);
    return EXIT_USAGE;
  }
  if (options.version) {
    printf("kestreld %s\n", PACKAGE_VERSION);
    options_clear(&options);
    return EXIT_OK;
  }

  config_path = options.config_file;
  if (config_path == NULL && g_getenv("KESTRELD_CONFIG") != NULL &&
      *g_getenv("KESTRELD_CONFIG") != '\0')
    config_path = g_getenv("KESTRELD_CONFIG");
  if (options.config_format != NULL &&
      !kq_config_format_from_string(options.config_format, &format)) {
    fprintf(stderr, "kestreld: --config-format: expected keyfile, scala or configgy, got '%s'\n",
            options.config_format);
    options_clear(&options);
    return EXIT_USAGE;
  }
  if (options.check_config && config_path == NULL) {
    fprintf(stderr, "kestreld: --check-config needs a config file (-f FILE)\n");
    options_clear(&options);
    return EXIT_USAGE;
  }
  config = config_path != NULL ? kq_server_config_load_as(config_path, format, warnings, &error)
                               : kq_server_config_new_defaults();
  if (config == NULL || !apply_overrides(config, &options, &error)) {
    fprintf(stderr, "kestreld: %s\n", error->message);
    options_clear(&options);
    return EXIT_USAGE;
  }
  if (options.check_config || options.print_config) {
    for (guint i = 0; i < warnings->len; i++)
      fprintf(stderr, "kestreld: warning: %s\n", (const gchar *) g_ptr_array_index(warnings, i));
    if (options.print_config) {
      g_autofree gchar *text = kq_server_config_to_key_file_text(config);
      fputs(text, stdout);
    } else {
      printf("%s: configuration OK (%s, %u warning%s)\n", config_path,
             kq_config_format_name(config->config_format), warnings->len,
             warnings->len == 1 ? "" : "s");
    }
    options_clear(&options);
    return EXIT_OK;
  }
  /* Before a possible chdir("/") by --daemonize. */
  kq_server_config_make_paths_absolute(config);
  if (options.pidfile != NULL)
    pidfile = g_canonicalize_filename(options.pidfile, NULL);

  if (!kq_log_setup(config->log_file, config->log_level, config->log_roll, &error)) {
    fprintf(stderr, "kestreld: %s\n", error->message);
    options_clear(&options);
    return EXIT_RUNTIME;
  }
  /* Kestrel settings kestreld has no equivalent for: in the log, once each. */
  for (guint i = 0; i < warnings->len; i++)
    g_warning("%s", (const gchar *) g_ptr_array_index(warnings, i));
  if (options.daemonize)
    report_fd = daemonize();
  options_clear(&options);

  /* The server owns the config from here on. */
  server = kq_server_new(g_steal_pointer(&config), &error);
  if (server == NULL) {
    fail_start(&report_fd, error->message);
    return EXIT_RUNTIME;
  }
  /* Only once the server holds the queue folder lock, so a refused second server never
   * overwrites the running one's pid file. */
  if (pidfile != NULL && !write_pidfile(pidfile, &error)) {
    fail_start(&report_fd, error->message);
    kq_server_free(server);
    return EXIT_RUNTIME;
  }
  if (report_fd >= 0) {
    report_to_parent(&report_fd, NULL);
    detach_stdio();
  }

  rc = kq_server_run(server);
  kq_server_free(server);
  if (pidfile != NULL)
    unlink(pidfile);
  kq_log_shutdown();
  return rc;
}
