/* A slow service on TCP, the stand-in for a remote API: each connection
 * sends one line "wait MS\n" and gets "done MS\n" back after MS ms (a
 * libuv timer), then the service closes the connection; a client that
 * shuts its side down after the request (shutdown(SHUT_WR)) is answered
 * all the same. Thousands of connections wait at once on one loop. Used
 * by iobound-slow-service, by iobound-compare --work tcp and by the tests,
 * which run it in a process of its own (slow_server_fork). */
#ifndef IOB_SLOW_SERVER_H
#define IOB_SLOW_SERVER_H

#include <sys/types.h>
#include <uv.h>

typedef struct slow_server slow_server;

/**
 * Listen on @p ip (an IPv4 or IPv6 address) and @p port (0: any free
 * port) on a loop of the server's own. Ignores SIGPIPE process-wide: a
 * client that hangs up must not kill the service.
 * @return 0 or a negative libuv code; on error *server is NULL.
 */
int slow_server_open(slow_server **server, const char *ip, unsigned port);

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
