#ifndef XEROML_SPAWN_H
#define XEROML_SPAWN_H

#include <sys/types.h>

/// Starts `path` with `argv` and `envp` (NULL-terminated) in `directory` (or the current one when
/// NULL), its standard input, output and error on `stdin_fd`, `stdout_fd` and `stderr_fd`, every other
/// descriptor closed, signal dispositions reset and no signal blocked. Returns 0 and the child's id in
/// `pid`, or an errno value.
int xeroml_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[], const char *directory,
                 int stdin_fd, int stdout_fd, int stderr_fd);

/// A pipe whose two ends are close-on-exec. Returns 0, or an errno value.
int xeroml_pipe_cloexec(int fds[2]);

#endif
