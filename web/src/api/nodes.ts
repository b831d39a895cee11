import { api, seg } from "./client";
import type { JoinToken, NodeInfo } from "./types";

export const nodesApi = {
  list: () => api.get<{ nodes: NodeInfo[]; self_id: string }>("/nodes"),
  createJoinToken: () => api.post<JoinToken>("/nodes/tokens"),
  remove: (id: string) => api.del<void>(`/nodes/${seg(id)}`),
};
