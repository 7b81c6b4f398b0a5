/* main.c - darvazad entry point (placeholder until the gateway lands). */
#include <stdio.h>

int main(void)
{
    fputs("darvazad: not built yet\n", stderr);
    return 1;
}
