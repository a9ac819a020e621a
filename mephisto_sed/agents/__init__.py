"""The agents: evaluate a fit, propose configurations, search them as a tree with memory, and
distill what worked into knowledge. Pure logic over the engine; no server imports."""
