/*
 * card_pin.c - the card PIN (see card.h): read from a file (the shared
 * dz_secret_file_read: a file group or others can access is refused), or typed at the
 * terminal with echo off, in the manner of OpenBSD's readpassphrase: the
 * terminal is always given back its settings, also when a signal ends the
 * program while the PIN is being typed.  The PIN exists in one malloc'd
 * buffer and in the stack buffer it was read into, both wiped on every
 * path.  This file must never print, log or keep the PIN.
 */
#include "card.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "base/err.h"
#include "base/secret.h"
#include "base/secretfile.h"

#include "base/compat.h"

/* Copy p[0..len) into a new NUL-terminated buffer. */
static int pin_dup(const char *p, size_t len, char **out)
{
    char *s = malloc(len + 1);

    if (!s)
        return DZ_ERR_NOMEM;
    memcpy(s, p, len);
    s[len] = '\0';
    *out = s;
    return 0;
}

void dz_card_pin_free(char *pin)
{
    if (!pin)
        return;
    dz_secret_wipe(pin, strlen(pin));
    free(pin);
}

int dz_card_pin_from_file(const char *path, char **out)
{
    char why[512];
    int rc = dz_secret_file_read(path, DZ_CARD_PIN_MAX, out, why, sizeof(why));

    if (rc != 0)
        fprintf(stderr, "darvaza-card: %s\n", why[0] ? why : "cannot read the PIN file");
    return rc;
}

/* ------------------------------------------------------------ the terminal */

/* What a signal handler needs to give the terminal back. */
static volatile sig_atomic_t tty_fd = -1;
static struct termios tty_saved;

static const int pin_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU};
#define NSIG_PIN (sizeof(pin_signals) / sizeof(pin_signals[0]))

/* A write whose failure changes nothing (the prompt, a newline). */
static void tty_write(int fd, const char *s, size_t n)
{
    ssize_t r = write(fd, s, n);
    (void)r;
}

static void restore_and_reraise(int sig)
{
    int fd = tty_fd;

    if (fd >= 0) {
        (void)tcsetattr(fd, TCSAFLUSH, &tty_saved);
        tty_write(fd, "\n", 1);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

int dz_card_pin_prompt(const char *prompt, char **out)
{
    struct sigaction sa;
    struct sigaction old[NSIG_PIN];
    struct termios noecho;
    char buf[DZ_CARD_PIN_MAX + 1];
    size_t len = 0;
    bool toolong = false;
    bool got_line = false;
    int fd;
    int rc;

    *out = NULL;
    fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        fprintf(stderr, "darvaza-card: no terminal to ask the PIN on (use --pin-file)\n");
        return DZ_ERR_IO;
    }
    if (tcgetattr(fd, &tty_saved) != 0) {
        fprintf(stderr, "darvaza-card: /dev/tty: %s\n", strerror(errno));
        close(fd);
        return DZ_ERR_IO;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = restore_and_reraise;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < NSIG_PIN; i++)
        sigaction(pin_signals[i], &sa, &old[i]);
    tty_fd = fd;
    noecho = tty_saved;
    noecho.c_lflag &= (tcflag_t) ~(ECHO | ECHOE | ECHOK);
    noecho.c_lflag |= ICANON | ECHONL;
    if (tcsetattr(fd, TCSAFLUSH, &noecho) != 0) {
        fprintf(stderr, "darvaza-card: cannot turn off echo on /dev/tty: %s\n", strerror(errno));
        rc = DZ_ERR_IO;
        goto out;
    }
    tty_write(fd, prompt, strlen(prompt));
    for (;;) {
        char c;
        ssize_t n = read(fd, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (c == '\n' || c == '\r') {
            got_line = true;
            break;
        }
        if (len < DZ_CARD_PIN_MAX)
            buf[len++] = c;
        else
            toolong = true; /* keep reading to the end of the line, keep nothing */
        c = 0;
    }
    if (toolong) {
        fprintf(stderr, "darvaza-card: the PIN is longer than %d bytes\n", DZ_CARD_PIN_MAX);
        rc = DZ_ERR_TOOBIG;
    } else if (len == 0 || memchr(buf, '\0', len)) {
        fprintf(stderr, "darvaza-card: %s\n", got_line ? "no PIN given" : "no PIN (end of input)");
        rc = DZ_ERR_INVAL;
    } else {
        rc = pin_dup(buf, len, out);
    }
out:
    (void)tcsetattr(fd, TCSAFLUSH, &tty_saved);
    tty_fd = -1;
    for (size_t i = 0; i < NSIG_PIN; i++)
        sigaction(pin_signals[i], &old[i], NULL);
    dz_secret_wipe(buf, sizeof(buf));
    close(fd);
    return rc;
}
