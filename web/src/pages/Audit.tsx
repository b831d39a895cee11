import { Page } from "@/components/AppShell";
import { PageHeader } from "@/components/States";

export default function AuditPage() {
  return (
    <Page>
      <PageHeader title="Audit" />
    </Page>
  );
}
