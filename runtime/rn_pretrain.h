/*
 * rn_pretrain.h — `runnel pretrain`: offline training of the state network
 * (rn_statenet.h) as a next-click model. Engine-internal: only main.c calls it.
 */
#ifndef RUNNEL_RN_PRETRAIN_H
#define RUNNEL_RN_PRETRAIN_H

/* The subcommand: argv[0] is "pretrain", the options follow. Returns the
 * process exit code: 0 done (or --help), 1 failed, 2 bad usage. */
int rn_pretrain_main(int argc, char **argv);

#endif
