import { Page } from "@/components/AppShell";
import { PageHeader } from "@/components/States";

export default function CronPage() {
  return (
    <Page>
      <PageHeader title="Cron" />
    </Page>
  );
}
