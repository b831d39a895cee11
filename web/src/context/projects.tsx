import { createContext, useContext } from "react";
import { projectsApi, type Project } from "@/api";
import { useQuery } from "@/hooks/useQuery";

interface ProjectsContextValue {
  projects: Project[] | undefined;
  loading: boolean;
  error: unknown;
  reload: () => Promise<void>;
}

const ProjectsContext = createContext<ProjectsContextValue>({
  projects: undefined,
  loading: false,
  error: null,
  reload: async () => {},
});

export function ProjectsProvider({ children, enabled = true }: { children: React.ReactNode; enabled?: boolean }) {
  const q = useQuery(() => projectsApi.list(), [], enabled);
  return (
    <ProjectsContext.Provider value={{ projects: q.data, loading: q.loading, error: q.error, reload: q.reload }}>
      {children}
    </ProjectsContext.Provider>
  );
}

export const useProjects = () => useContext(ProjectsContext);
