/* The page's answers over HTTP/1.1 (iobound-server --http PORT): one
 * request a connection, answered and closed (Connection: close), so a
 * stream of events ends with the connection and needs no length. The
 * page is the only thing the browser loads: the Content-Security-Policy
 * lets it run its own script and style and connect back to this server,
 * nothing else. */
#include <string.h>
#include <time.h>

#include "server.h"

/* The status line and headers; connection_send() adds the last '\n'. A
 * length of -1: none (a stream, ended by the connection's end). */
static void send_head(connection *conn, int status, const char *type,
                      long length) {
  char len[48] = "", date[64] = "";
  if (length >= 0)
    snprintf(len, sizeof(len), "Content-Length: %ld\r\n", length);
  time_t now = time(NULL);
  struct tm tm;
  if (gmtime_r(&now, &tm) != NULL)
    strftime(date, sizeof(date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
  connection_send(conn,
                  "HTTP/1.1 %d %s\r\n"
                  "%s"
                  "Content-Type: %s\r\n"
                  "%s%s"
                  "Cache-Control: no-store\r\n"
                  "X-Content-Type-Options: nosniff\r\n"
                  "Content-Security-Policy: default-src 'none'; "
                  "script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                  "connect-src 'self'; img-src data:\r\n"
                  "Connection: close\r\n\r",
                  status, cli_http_reason(status), date, type, len,
                  status == 405 ? "Allow: GET, HEAD\r\n" : "");
}

void http_send_error(connection *conn, int status, const char *text) {
  /* "error TEXT\n", as the line protocol says it. */
  send_head(conn, status, "text/plain; charset=utf-8",
            (long)(strlen("error \n") + strlen(text)));
  connection_send(conn, "error %s", text);
  connection_end(conn);
}

/* A whole answer of 200: its head, its text and a '\n' (which
 * connection_send() adds), unless @p head_only; then the end. */
static void send_whole(connection *conn, const char *type, const char *text,
                       bool head_only) {
  send_head(conn, 200, type, (long)strlen(text) + 1);
  if (!head_only)
    connection_send(conn, "%s", text);
  connection_end(conn);
}

void http_send_page(connection *conn, bool head_only) {
  send_whole(conn, "text/html; charset=utf-8", server_page, head_only);
}

void http_send_json(connection *conn, const char *json, bool head_only) {
  send_whole(conn, "application/json", json, head_only);
}

void http_start_events(connection *conn) {
  send_head(conn, 200, "text/event-stream; charset=utf-8", -1);
}

void http_send_event(connection *conn, const char *event, const char *data) {
  /* An event's data is one line here: the answers are lines of JSON. */
  connection_send(conn, "event: %s\ndata: %s\n", event, data);
}
