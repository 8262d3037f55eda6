"""Controller: broker liveness, topic creation, leader election, ISR changes."""
