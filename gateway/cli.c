/* cli.c - the darvaza operator command (placeholder until subcommands land). */
#include <stdio.h>

int main(void)
{
    fputs("darvaza: not built yet\n", stderr);
    return 1;
}
