import { Page } from "@/components/AppShell";
import { PageHeader } from "@/components/States";

export default function SettingsPage() {
  return (
    <Page>
      <PageHeader title="Settings" />
    </Page>
  );
}
