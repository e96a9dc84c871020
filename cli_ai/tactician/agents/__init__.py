"""Agents: SB3 algorithms (ppo, ddpg, td3, sac), PrioritizedDDPG, random search,
and the tabular/lightweight agents of the autoscaling toolkit.

`make_agent` lives in `cli_ai.tactician.agents.factory` so that importing this
package stays free of torch."""
