/*
 * The pod sandbox's process (what containerd's `sandbox_image` runs): it holds the pod's
 * namespaces open and does nothing else. As PID 1 of a pod that shares its PID namespace it
 * also reaps the zombies other containers leave behind, so it waits on every SIGCHLD.
 * SIGINT and SIGTERM end it at once with status 0: the kubelet stops a sandbox that way.
 *
 * Built static (gcc -static) so the image needs no libc: hack/image/pause.Containerfile.
 * `pause --version` prints the version and exits, for a smoke test outside a container.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAUSE_VERSION "3.10-servekit"

static void reap_children(void)
{
    /* One SIGCHLD may stand for several exits: wait until none is left. */
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(int argc, char **argv)
{
    sigset_t watched;
    int sig;

    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        puts("pause " PAUSE_VERSION);
        return 0;
    }
    if (argc != 1) {
        fprintf(stderr, "pause: takes no arguments (got '%s'); only --version\n", argv[1]);
        return 2;
    }

    /* Block the signals we handle and take them synchronously with sigwait: no handler
     * races, and PID 1 ignores signals it has no handler for, so SIGTERM must be waited on. */
    sigemptyset(&watched);
    sigaddset(&watched, SIGCHLD);
    sigaddset(&watched, SIGINT);
    sigaddset(&watched, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &watched, NULL) != 0) {
        fprintf(stderr, "pause: sigprocmask: %s\n", strerror(errno));
        return 1;
    }

    for (;;) {
        if (sigwait(&watched, &sig) != 0) {
            continue;
        }
        if (sig == SIGCHLD) {
            reap_children();
        } else {
            return 0;
        }
    }
}
