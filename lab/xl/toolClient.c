/*
 * The lab's xl and xenstore-* on a lab host: a thin client of the host's tool server
 * (toolServer.ts), which runs the call in a Node process that stays up. The host's wrappers exec
 *   tvd-lab-tool <socket> <node> <build dir> <tool> [args...]
 * under the host's lab lock (flock -o). The client sends its working directory, the tool and the
 * arguments, writes the answer's stdout and stderr and exits with its code. With no server on the
 * socket it starts one (in a session of its own, with no descriptor of this call's) and waits for
 * it; if none comes up, it runs the call as its own Node process, as the lab's tools once did.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int connect_to(const char *path) {
  struct sockaddr_un a;
  if (strlen(path) >= sizeof a.sun_path) return -1;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  strcpy(a.sun_path, path);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) return fd;
  close(fd);
  return -1;
}

/* The server, detached: its own session, stdin from /dev/null, output to its log, nothing else open. */
static void start_server(const char *sock, const char *node, const char *build) {
  pid_t pid = fork();
  if (pid != 0) {
    if (pid > 0) waitpid(pid, NULL, 0);
    return;
  }
  if (fork() != 0) _exit(0); /* the grandchild is reparented: the call does not wait for it */
  setsid();
  int in = open("/dev/null", O_RDONLY);
  char log[4096];
  snprintf(log, sizeof log, "%s.log", sock);
  int out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (in < 0 || out < 0) _exit(127);
  dup2(in, 0);
  dup2(out, 1);
  dup2(out, 2);
  for (int fd = 3; fd < 1024; fd++) close(fd);
  char server[4096];
  snprintf(server, sizeof server, "%s/lab/xl/toolServer.js", build);
  execl(node, node, server, sock, (char *)NULL);
  _exit(127);
}

static int write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int put_field(int fd, const char *s) {
  uint32_t len = (uint32_t)strlen(s), be = htonl(len);
  return write_all(fd, &be, 4) || write_all(fd, s, len);
}

static uint32_t get_u32(const unsigned char *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Runs the call as its own Node process: lab/xl/main.js or lab/xenstore/main.js. */
static void fallback(const char *node, const char *build, int argc, char **argv) {
  char main_js[4096];
  int xl = strcmp(argv[0], "xl") == 0;
  snprintf(main_js, sizeof main_js, "%s/lab/%s/main.js", build, xl ? "xl" : "xenstore");
  char **args = calloc((size_t)argc + 3, sizeof *args);
  int k = 0;
  args[k++] = (char *)node;
  args[k++] = main_js;
  for (int i = xl ? 1 : 0; i < argc; i++) args[k++] = argv[i];
  args[k] = NULL;
  execv(node, args);
  perror("tvd-lab-tool: exec node");
  exit(127);
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: tvd-lab-tool <socket> <node> <build dir> <tool> [args...]\n");
    return 2;
  }
  const char *sock = argv[1], *node = argv[2], *build = argv[3];
  int fd = connect_to(sock);
  if (fd < 0) {
    start_server(sock, node, build);
    for (int i = 0; i < 1000 && fd < 0; i++) { /* up to 10 s: Node starting on a loaded machine */
      struct timespec t = {0, 10 * 1000 * 1000};
      nanosleep(&t, NULL);
      fd = connect_to(sock);
    }
    if (fd < 0) fallback(node, build, argc - 4, argv + 4);
  }
  char cwd[4096];
  if (!getcwd(cwd, sizeof cwd)) strcpy(cwd, "/");
  uint32_t n = htonl((uint32_t)(argc - 4 + 1));
  int bad = write_all(fd, &n, 4) || put_field(fd, cwd);
  for (int i = 4; i < argc && !bad; i++) bad = put_field(fd, argv[i]);
  size_t cap = 65536, len = 0;
  unsigned char *buf = malloc(cap);
  for (;;) {
    if (len == cap) buf = realloc(buf, cap *= 2);
    ssize_t r = read(fd, buf + len, cap - len);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    len += (size_t)r;
  }
  uint32_t code, out_len, err_len;
  if (bad || len < 8 || (out_len = get_u32(buf + 4), len < 12 + (size_t)out_len) ||
      (err_len = get_u32(buf + 8 + out_len), len < 12 + (size_t)out_len + err_len)) {
    fprintf(stderr, "tvd-lab-tool: the lab's tool server at %s gave no answer (see %s.log)\n", sock, sock);
    return 1;
  }
  code = get_u32(buf);
  if (write_all(1, buf + 8, out_len) || write_all(2, buf + 12 + out_len, err_len)) return 1;
  return (int)code;
}
