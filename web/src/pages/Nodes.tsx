import { Page } from "@/components/AppShell";
import { PageHeader } from "@/components/States";

export default function NodesPage() {
  return (
    <Page>
      <PageHeader title="Nodes" />
    </Page>
  );
}
