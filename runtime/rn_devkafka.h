/*
 * rn_devkafka.h — `runnel dev-kafka`: a local Kafka for examples and tests.
 */
#ifndef RUNNEL_RN_DEVKAFKA_H
#define RUNNEL_RN_DEVKAFKA_H

/* The subcommand; argv[0] is "dev-kafka". Returns the exit code. */
int rn_devkafka_main(int argc, char **argv);

#endif
