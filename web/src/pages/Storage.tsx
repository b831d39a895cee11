import { Page } from "@/components/AppShell";
import { PageHeader } from "@/components/States";

export default function StoragePage() {
  return (
    <Page>
      <PageHeader title="Storage" />
    </Page>
  );
}
