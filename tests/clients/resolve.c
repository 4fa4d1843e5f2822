/* A resolver client built from the C library's own getaddrinfo (glibc or musl, linked
 * statically by tests/build-client-image.sh), so tests see what real programs see.
 *
 *   resolve NAME [COUNT] [INTERVAL_MS]
 *
 * Looks NAME up COUNT times (default 1), INTERVAL_MS apart (default 0), IPv4 only, and prints
 * one line per lookup: "OK MS ADDR ADDR ..." in the order the library returned them, or
 * "FAIL MS REASON". Exits 0 when every lookup succeeded, else 1. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: resolve NAME [COUNT] [INTERVAL_MS]\n");
        return 2;
    }
    int count = argc > 2 ? atoi(argv[2]) : 1;
    int interval = argc > 3 ? atoi(argv[3]) : 0;
    int failed = 0;
    for (int i = 0; i < count; i++) {
        struct addrinfo hints, *res = NULL;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_INET;
        hints.ai_socktype = SOCK_STREAM;
        double start = now_ms();
        int rc = getaddrinfo(argv[1], NULL, &hints, &res);
        double took = now_ms() - start;
        if (rc != 0) {
            printf("FAIL %.1f %s\n", took, gai_strerror(rc));
            failed = 1;
        } else {
            printf("OK %.1f", took);
            for (struct addrinfo *a = res; a; a = a->ai_next) {
                char text[INET_ADDRSTRLEN];
                struct sockaddr_in *in = (struct sockaddr_in *)a->ai_addr;
                inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
                printf(" %s", text);
            }
            printf("\n");
            freeaddrinfo(res);
        }
        fflush(stdout);
        if (interval > 0 && i + 1 < count) {
            struct timespec pause = {interval / 1000, (interval % 1000) * 1000000L};
            nanosleep(&pause, NULL);
        }
    }
    return failed;
}
