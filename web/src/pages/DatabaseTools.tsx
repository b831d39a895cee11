import { Page } from "@/components/AppShell";
import { PageHeader } from "@/components/States";

export default function DatabaseToolsPage() {
  return (
    <Page>
      <PageHeader title="DatabaseTools" />
    </Page>
  );
}
