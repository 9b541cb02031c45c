/*
 * Tiny static HTTP health probe for the test images (no shell, no wget in them).
 *
 *   GET http://127.0.0.1:$PORT$HEALTH_PATH   (PORT default 80, HEALTH_PATH default /health)
 *
 * Exit 0 iff the status line is 2xx, else 1. Every socket operation has a 2 s timeout.
 * Uses inet_addr (no getaddrinfo): static glibc cannot load NSS modules.
 * Build: gcc -static -O2 -s -o healthcheck healthcheck.c
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int fail(const char *what) {
    fprintf(stderr, "healthcheck: %s\n", what);
    return 1;
}

int main(void) {
    const char *port_s = getenv("PORT");
    const char *path = getenv("HEALTH_PATH");
    if (!port_s || !*port_s) port_s = "80";
    if (!path || !*path) path = "/health";
    long port = strtol(port_s, NULL, 10);
    if (port <= 0 || port > 65535) return fail("bad PORT");

    alarm(5); /* hard stop, whatever happens */

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return fail("socket failed");
    struct timeval tv = {.tv_sec = 2, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv); /* also bounds connect() */

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = inet_addr("127.0.0.1");
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) return fail("connect failed");

    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.0\r\nHost: 127.0.0.1:%ld\r\nUser-Agent: sa-healthcheck\r\n"
                     "Connection: close\r\n\r\n",
                     path, port);
    if (n <= 0 || n >= (int)sizeof req) return fail("path too long");
    for (int off = 0; off < n;) {
        ssize_t w = write(fd, req + off, (size_t)(n - off));
        if (w <= 0) return fail("write failed");
        off += (int)w;
    }

    /* Read until the end of the status line (or 12+ bytes: "HTTP/1.1 200"). */
    char buf[256];
    size_t got = 0;
    while (got < sizeof buf - 1) {
        ssize_t r = read(fd, buf + got, sizeof buf - 1 - got);
        if (r <= 0) break;
        got += (size_t)r;
        buf[got] = '\0';
        if (strchr(buf, '\n')) break;
    }
    buf[got] = '\0';
    close(fd);

    if (got < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ') return fail("no HTTP status line");
    char *nl = strpbrk(buf, "\r\n");
    if (nl) *nl = '\0';
    if (buf[9] == '2' && buf[10] >= '0' && buf[10] <= '9' && buf[11] >= '0' && buf[11] <= '9') {
        printf("healthcheck: %s\n", buf);
        return 0;
    }
    fprintf(stderr, "healthcheck: %s\n", buf);
    return 1;
}
