"""Classic algorithms of the CS285 lectures: tabular dynamic programming and TD control,
REINFORCE, A2C, TRPO and soft Q-learning."""
