/* A slow service on TCP, the stand-in for a remote API. It speaks two
 * protocols on one port, told apart by a connection's first byte:
 *
 * - a line "wait MS\n" gets "done MS\n" back after MS ms (a libuv timer),
 *   then the service closes the connection; a client that shuts its side
 *   down after the request (shutdown(SHUT_WR)) is answered all the same;
 * - HTTP/1.0 and 1.1 (the first byte is an uppercase letter: "GET ..."):
 *   GET /wait/MS is answered "200 OK" with the body "done MS\n" after MS
 *   ms. Connections are kept alive (HTTP/1.1 unless "Connection: close";
 *   HTTP/1.0 only with "Connection: keep-alive"), and pipelined requests
 *   are answered one after another, in order. Other paths get 404, MS past
 *   32 bits 400 (both keep the connection); a malformed request 400, a
 *   body or a method other than GET or HEAD 405 or 400, another version
 *   505, a request line or head past SLOW_HTTP_HEAD_MAX 414 or 431: each
 *   of those closes it.
 *
 * It can be told to misbehave as remote services do (slow_faults): to fail
 * a share of requests at once (HTTP 503 or 500, with Retry-After if
 * asked; the line protocol's "error unavailable"), and to answer a share
 * N times late (a heavy tail).
 *
 * Thousands of connections wait at once on one loop. Used by
 * iobound-slow-service, by iobound-compare --work tcp and by the tests,
 * which run it in a process of its own (slow_server_fork). */
#ifndef IOB_SLOW_SERVER_H
#define IOB_SLOW_SERVER_H

#include <sys/types.h>
#include <uv.h>

/** An HTTP request's line and headers, the blank line included, must fit
 *  in this many bytes. */
#define SLOW_HTTP_HEAD_MAX 8192

typedef struct slow_server slow_server;

/** How the service misbehaves; zero for every member: it does not. */
typedef struct slow_faults {
  /** The share of requests, 0..1, answered at once with a failure: HTTP
   *  `fail_status`, the line protocol "error unavailable\n". */
  double fail;
  /** The HTTP status of a failure: 503 (0 too) or 500. */
  int fail_status;
  /** Non-zero: a failed HTTP answer says "Retry-After: N" (seconds). */
  uint32_t retry_after;
  /** The share of the answers that are not failures, 0..1, sent
   *  `slow_factor` times later than asked ("done MS" all the same). */
  double slow;
  uint32_t slow_factor;
  /** Of the draws: the same seed, the same faults in the same order of
   *  requests; 0 picks one from the clock. */
  uint64_t seed;
} slow_faults;

/**
 * Listen on @p ip (an IPv4 or IPv6 address) and @p port (0: any free
 * port) on a loop of the server's own. Ignores SIGPIPE process-wide: a
 * client that hangs up must not kill the service.
 * @return 0 or a negative libuv code; on error *server is NULL.
 */
int slow_server_open(slow_server **server, const char *ip, unsigned port);

/** From now on misbehave as @p faults says (copied; NULL: not at all). */
void slow_server_set_faults(slow_server *server, const slow_faults *faults);

/** @return the port the server listens on. */
unsigned slow_server_port(const slow_server *server);

/** Serve on the calling thread until SIGINT or SIGTERM. */
int slow_server_run(slow_server *server);

/**
 * Run a service on @p ip, on a free port, in a child process of its own
 * (forked: call it before making threads). A process of its own has its
 * own file descriptors, and shares no descriptor numbers with yours. On
 * Linux it ends with its parent.
 * @param[out] port receives the port it listens on.
 * @param[out] pid receives its process id, for slow_server_kill().
 * @return 0 or a negative libuv code.
 */
int slow_server_fork(const char *ip, unsigned *port, pid_t *pid);

/** slow_server_fork() of a service that misbehaves as @p faults says
 *  (NULL: it does not). */
int slow_server_fork_with(const char *ip, const slow_faults *faults,
                          unsigned *port, pid_t *pid);

/** Stop a forked service and wait for it. @return its exit status. */
int slow_server_kill(pid_t pid);

/** Close the listener and every connection, and free it all. NULL is a
 *  no-op. */
void slow_server_close(slow_server *server);

/**
 * Raise this process's soft limit on open files to its hard limit: every
 * connection is a file descriptor.
 * @return the soft limit now in force.
 */
unsigned long fd_limit_raise(void);

#endif
