import { Page } from "@/components/AppShell";
import { PageHeader } from "@/components/States";

export default function AnalyticsPage() {
  return (
    <Page>
      <PageHeader title="Analytics" />
    </Page>
  );
}
