#ifndef SANDHI_CNCURSESW_SHIM_H
#define SANDHI_CNCURSESW_SHIM_H
// The wide-character ncurses API (cchar_t, setcchar, mvwadd_wch, wget_wch) is declared only
// when these are set before the header.
#ifndef _XOPEN_SOURCE_EXTENDED
#define _XOPEN_SOURCE_EXTENDED 1
#endif
#ifndef NCURSES_WIDECHAR
#define NCURSES_WIDECHAR 1
#endif
#include <locale.h>
#include <langinfo.h>
#include <wchar.h>
#include <ncursesw/curses.h>
#include <ncursesw/term.h>
#include <pty.h>
#include <stdio.h>

// Swift cannot import curses' global variables safely under strict concurrency, nor its
// function-like and bit-shifting macros; these wrappers are the whole of what the backend
// uses. They read the globals at the moment of the call, on the curses thread.

static inline WINDOW *sandhi_stdscr(void) { return stdscr; }
// newterm on standard output and input; unlike initscr it returns NULL for an unknown TERM
// instead of exiting.
static inline SCREEN *sandhi_newterm(void) { return newterm(NULL, stdout, stdin); }
// newterm on a terminal the program opened itself (a pseudo-terminal), of the given type.
// The FILEs are the screen's for its lifetime; fclose them after delscreen.
static inline SCREEN *sandhi_newterm_on(const char *type, FILE *out, FILE *in) { return newterm(type, out, in); }
static inline FILE *sandhi_fdopen(int fd, const char *mode) { return fdopen(fd, mode); }
// A pseudo-terminal pair of the given size (openpty is in glibc's libc since 2.34).
static inline int sandhi_openpty(int *controller_fd, int *terminal_fd, unsigned short row_count, unsigned short column_count) {
    struct winsize size = { row_count, column_count, 0, 0 };
    return openpty(controller_fd, terminal_fd, NULL, NULL, &size);
}
static inline int sandhi_lines(void) { return LINES; }
static inline int sandhi_cols(void) { return COLS; }
static inline int sandhi_colors(void) { return COLORS; }
static inline int sandhi_color_pairs(void) { return COLOR_PAIRS; }

static inline attr_t sandhi_a_normal(void) { return A_NORMAL; }
static inline attr_t sandhi_a_bold(void) { return A_BOLD; }
static inline attr_t sandhi_a_dim(void) { return A_DIM; }
static inline attr_t sandhi_a_italic(void) { return A_ITALIC; }
static inline attr_t sandhi_a_underline(void) { return A_UNDERLINE; }
static inline attr_t sandhi_a_reverse(void) { return A_REVERSE; }

static inline int sandhi_key_f(int n) { return KEY_F(n); }
static inline int sandhi_key_code_yes(void) { return KEY_CODE_YES; }

// Whether this ncurses has extended colour pairs (more than 32767 pairs, pair numbers as int).
static inline int sandhi_has_extended_pairs(void) {
#if NCURSES_EXT_COLORS
    return 1;
#else
    return 0;
#endif
}

// Defines pair `pair` as (fg, bg); -1 is the terminal's default colour.
static inline int sandhi_init_pair(int pair, int fg, int bg) {
#if NCURSES_EXT_COLORS
    return init_extended_pair(pair, fg, bg);
#else
    return init_pair((short)pair, (short)fg, (short)bg);
#endif
}

// One cell: the spacing character and up to four combining characters (chars ends with 0),
// with attributes and a colour pair (an int, passed through setcchar's opts when extended).
static inline int sandhi_set_cell(cchar_t *cell, const wchar_t *chars, attr_t attrs, int pair) {
#if NCURSES_EXT_COLORS
    return setcchar(cell, chars, attrs, 0, &pair);
#else
    return setcchar(cell, chars, attrs, (short)pair, NULL);
#endif
}

static inline const char *sandhi_codeset(void) { return nl_langinfo(CODESET); }
#endif
