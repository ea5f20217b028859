/* The pod sandbox ("pause") process of the test node's image localhost/pause:local, built by
 * hack/images/build.sh pause (gcc -Os -static). It holds the pod's namespaces: it sleeps until
 * SIGINT/SIGTERM, and reaps any child that is reparented to it. */
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_term(int sig) {
  (void)sig;
  _exit(0);
}

static void on_child(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction term = {0};
  struct sigaction child = {0};
  term.sa_handler = on_term;
  sigaction(SIGINT, &term, NULL);
  sigaction(SIGTERM, &term, NULL);
  child.sa_handler = on_child;
  child.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  sigaction(SIGCHLD, &child, NULL);
  for (;;) {
    pause();
  }
}
