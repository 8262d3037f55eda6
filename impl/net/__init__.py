"""The real runtime: the same sans-IO brokers, controller and coordinators as the
simulator, driven by wall-clock time, real files and Kafka's wire protocol on TCP."""
