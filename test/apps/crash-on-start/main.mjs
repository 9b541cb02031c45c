// Crashes right away: the swarm task ends with "task: non-zero exit (3)".
process.stderr.write('boom: crash-on-start\n');
process.exit(3);
